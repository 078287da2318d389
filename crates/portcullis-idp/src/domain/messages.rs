//! Delivery of confirmation and reset codes. The default sender is an outbox: one JSON object per
//! line appended to a file, so a developer (or a test) reads the code there. With `smtp` set, codes
//! go by email through that relay (STARTTLS, implicit TLS, or plain for a trusted relay; AUTH PLAIN
//! when a user name is set), sent in the background so a sign-up never waits on the mail server.
//! Log lines never carry the code.

use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Sign-up confirmation code.
    SignUp,
    /// Forgot-password code.
    ForgotPassword,
    /// Admin-created account with a temporary password.
    Invitation,
    /// A changed email or phone number to verify (`GetUserAttributeVerificationCode`).
    VerifyAttribute,
}

impl Purpose {
    fn subject(self) -> &'static str {
        match self {
            Purpose::SignUp => "Your verification code",
            Purpose::ForgotPassword => "Your password reset code",
            Purpose::Invitation => "Your temporary password",
            Purpose::VerifyAttribute => "Your verification code",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Purpose::SignUp => "sign_up",
            Purpose::ForgotPassword => "forgot_password",
            Purpose::Invitation => "invitation",
            Purpose::VerifyAttribute => "verify_attribute",
        }
    }
}

/// One code on its way to a user: what the outbox writes and the SMTP relay sends. (No `Debug`:
/// the code is a secret.)
pub struct Message {
    /// The pool's name.
    pub pool: String,
    /// Why it is sent.
    pub purpose: Purpose,
    /// Whom it is for.
    pub username: String,
    /// The email address or phone number it goes to.
    pub destination: String,
    /// The code or temporary password.
    pub code: String,
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
    pub fn send(&self, m: &Message) {
        let (pool, purpose, username) = (m.pool.as_str(), m.purpose, m.username.as_str());
        let line = json!({
            "time": portcullis_core::now(),
            "pool": pool,
            "purpose": purpose.as_str(),
            "username": username,
            "destination": m.destination,
            "code": m.code,
        });
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let result = (|| -> std::io::Result<()> {
            // Codes are secrets: the file is 0600 and a directory made for it 0700.
            let mut f = portcullis_config::state_dir::open_append(&self.path)?;
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

/// How a pool delivers codes.
#[derive(Debug)]
pub enum Sender {
    /// The JSON-lines file.
    Outbox(Outbox),
    /// Email through an SMTP relay.
    Smtp(Arc<SmtpRelay>),
}

impl Sender {
    /// Sends a code (never blocks on the network; SMTP runs in the background).
    pub fn send(&self, m: Message) {
        match self {
            Sender::Outbox(o) => o.send(&m),
            Sender::Smtp(relay) => {
                if !m.destination.contains('@') {
                    tracing::warn!(
                        pool = m.pool.as_str(),
                        username = m.username.as_str(),
                        "no email address; the code was not sent (SMS is not supported)"
                    );
                    return;
                }
                let relay = relay.clone();
                tokio::spawn(async move {
                    let result = relay.send(&m).await;
                    let (pool, purpose, username) =
                        (m.pool.as_str(), m.purpose, m.username.as_str());
                    match result {
                        Ok(()) => tracing::info!(
                            pool,
                            purpose = purpose.as_str(),
                            username,
                            "message sent by SMTP"
                        ),
                        Err(e) => {
                            tracing::error!(pool, purpose = purpose.as_str(), username, error = %e, "SMTP delivery failed")
                        }
                    }
                });
            }
        }
    }

    /// The outbox file, when codes go there.
    pub fn outbox_path(&self) -> Option<&std::path::Path> {
        match self {
            Sender::Outbox(o) => Some(o.path()),
            Sender::Smtp(_) => None,
        }
    }
}

/// An SMTP relay with its resolved password.
#[derive(Debug)]
pub struct SmtpRelay {
    cfg: portcullis_config::Smtp,
    password: Option<String>,
}

/// The longest an SMTP exchange may take.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl SmtpRelay {
    /// A relay from config; `password` is the resolved `password_env`.
    pub fn new(cfg: portcullis_config::Smtp, password: Option<String>) -> SmtpRelay {
        SmtpRelay { cfg, password }
    }

    async fn send(&self, m: &Message) -> std::io::Result<()> {
        tokio::time::timeout(SMTP_TIMEOUT, self.exchange(m))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "SMTP timed out"))?
    }

    async fn tls(&self, tcp: Box<dyn Io>) -> std::io::Result<Box<dyn Io>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(self.cfg.host.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let s = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        Ok(Box::new(s))
    }

    async fn exchange(&self, m: &Message) -> std::io::Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (to, purpose, pool, code) = (m.destination.as_str(), m.purpose, &m.pool, &m.code);
        if to.contains(['\r', '\n', '<', '>']) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "bad recipient",
            ));
        }
        let tcp = tokio::net::TcpStream::connect((self.cfg.host.as_str(), self.cfg.port)).await?;
        let mut stream: Box<dyn Io> = Box::new(tcp);
        if self.cfg.security == "tls" {
            stream = self.tls(stream).await?;
        }
        let mut conn = BufReader::new(stream);
        async fn reply<S: Io>(c: &mut BufReader<S>, want: u16) -> std::io::Result<Vec<String>> {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if c.read_line(&mut line).await? == 0 || lines.len() > 100 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "SMTP connection closed",
                    ));
                }
                let done = line.as_bytes().get(3) != Some(&b'-');
                lines.push(line.trim_end().to_string());
                if done {
                    break;
                }
            }
            let last = lines.last().cloned().unwrap_or_default();
            if !last.starts_with(&want.to_string()) {
                return Err(std::io::Error::other(format!("SMTP server said: {last}")));
            }
            Ok(lines)
        }
        async fn cmd<S: Io>(
            c: &mut BufReader<S>,
            line: &str,
            want: u16,
        ) -> std::io::Result<Vec<String>> {
            c.get_mut()
                .write_all(format!("{line}\r\n").as_bytes())
                .await?;
            c.get_mut().flush().await?;
            reply(c, want).await
        }
        reply(&mut conn, 220).await?;
        let mut ehlo = cmd(&mut conn, "EHLO portcullis", 250).await?;
        if self.cfg.security == "starttls" {
            if !ehlo
                .iter()
                .any(|l| l[4.min(l.len())..].eq_ignore_ascii_case("STARTTLS"))
            {
                return Err(std::io::Error::other(
                    "the SMTP server does not offer STARTTLS",
                ));
            }
            cmd(&mut conn, "STARTTLS", 220).await?;
            let tls = self.tls(conn.into_inner()).await?;
            conn = BufReader::new(tls);
            ehlo = cmd(&mut conn, "EHLO portcullis", 250).await?;
        }
        let _ = ehlo;
        if let (Some(user), Some(pw)) = (&self.cfg.username, &self.password) {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pw}"));
            cmd(&mut conn, &format!("AUTH PLAIN {token}"), 235).await?;
        }
        cmd(&mut conn, &format!("MAIL FROM:<{}>", self.cfg.from), 250).await?;
        cmd(&mut conn, &format!("RCPT TO:<{to}>"), 250).await?;
        cmd(&mut conn, "DATA", 354).await?;
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let body = match purpose {
            Purpose::SignUp => {
                format!("Your verification code for {pool} is {code}. It is valid for 24 hours.")
            }
            Purpose::ForgotPassword => {
                format!("Your password reset code for {pool} is {code}. It is valid for 1 hour.")
            }
            Purpose::Invitation => format!(
                "An account was created for you in {pool}. Your temporary password is {code}"
            ),
            Purpose::VerifyAttribute => {
                format!("Your verification code for {pool} is {code}. It is valid for 24 hours.")
            }
        };
        let message = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}@portcullis>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n.",
            from = self.cfg.from,
            subject = purpose.subject(),
            id = uuid::Uuid::new_v4(),
        );
        cmd(&mut conn, &message, 250).await?;
        let _ = cmd(&mut conn, "QUIT", 221).await;
        Ok(())
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
        let message = |purpose, code: &str| Message {
            pool: "p".into(),
            purpose,
            username: "alice".into(),
            destination: "alice@example.com".into(),
            code: code.into(),
        };
        o.send(&message(Purpose::SignUp, "123456"));
        o.send(&message(Purpose::ForgotPassword, "654321"));
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
