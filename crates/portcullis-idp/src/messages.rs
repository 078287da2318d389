//! Delivery of confirmation and reset codes. The default sender is an outbox: one JSON object per
//! line appended to a file, so a developer (or a test) reads the code there. The log line never
//! carries the code.

use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sign-up confirmation code.
    SignUp,
    /// Forgot-password code.
    ForgotPassword,
    /// Admin-created account with a temporary password.
    Invitation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::SignUp => "sign_up",
            Purpose::ForgotPassword => "forgot_password",
            Purpose::Invitation => "invitation",
        }
    }
}

/// The file outbox of one pool.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Outbox {
    /// An outbox appending to `path` (created on first message).
    pub fn new(path: PathBuf) -> Outbox {
        Outbox {
            path,
            lock: Mutex::new(()),
        }
    }

    /// Where messages go.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Appends a message; failures are logged (the flow goes on, as Cognito's does when delivery fails).
    pub fn send(
        &self,
        pool: &str,
        purpose: Purpose,
        username: &str,
        destination: &str,
        code: &str,
    ) {
        let line = json!({
            "time": crate::now(),
            "pool": pool,
            "purpose": purpose.as_str(),
            "username": username,
            "destination": destination,
            "code": code,
        });
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = (|| -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            writeln!(f, "{line}")
        })();
        match result {
            Ok(()) => {
                tracing::info!(pool, purpose = purpose.as_str(), username, outbox = %self.path.display(), "message written to the outbox")
            }
            Err(e) => {
                tracing::error!(pool, outbox = %self.path.display(), error = %e, "cannot write to the outbox")
            }
        }
    }
}

/// Hides most of an address the way Cognito's `CodeDeliveryDetails` does (`a***@e***`).
pub fn mask(destination: &str) -> String {
    match destination.split_once('@') {
        Some((user, domain)) => format!(
            "{}***@{}***",
            user.chars().next().unwrap_or('*'),
            domain.chars().next().unwrap_or('*')
        ),
        None => {
            let tail: String = destination
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("+*******{tail}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_appends_json_lines() {
        let dir = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::new_v4()));
        let o = Outbox::new(dir.join("p.jsonl"));
        o.send("p", Purpose::SignUp, "alice", "alice@example.com", "123456");
        o.send(
            "p",
            Purpose::ForgotPassword,
            "alice",
            "alice@example.com",
            "654321",
        );
        let text = std::fs::read_to_string(o.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["code"], "654321");
        assert_eq!(lines[0]["purpose"], "sign_up");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn masks_like_cognito() {
        assert_eq!(mask("alice@example.com"), "a***@e***");
        assert_eq!(mask("+15555550123"), "+*******0123");
    }
}
