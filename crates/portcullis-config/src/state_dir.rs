//! The state directory (`load_balancer.state_dir`) holds secrets: the user store (token-signing
//! keys, client and TOTP secrets), the balancer's keys, TLS keys and the outbox of codes. It is
//! private to the user running Portcullis: the directory and every directory in it `0700`, every
//! file `0600`. Everything that creates a file or directory there (or a file holding secrets
//! elsewhere, such as an outbox or access log) does it through `portcullis_core::private_file`
//! (re-exported here), with the mode given at creation, so that no file is ever readable by
//! others, not even for a moment; [`secure`] checks the directory at start and tightens what older
//! versions left readable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The creation of private files and directories has one owner, `portcullis_core::private_file`;
/// the state directory's callers reach it here too.
pub use portcullis_core::private_file::{
    DIR_MODE, FILE_MODE, create_dir_all, ensure_file, open_append, restrict_path, write_new,
};

/// How deep [`secure`] walks (the tree Portcullis creates is two levels deep).
const MAX_DEPTH: usize = 8;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// Others could plant or swap files in it (keys, the store): refused, never repaired silently.
    #[error(
        "load_balancer.state_dir: {path}: is writable by {who} (mode {mode:03o}); it holds keys and secrets: make it private (chmod 700 {path}) or choose another directory"
    )]
    Writable {
        /// The directory.
        path: PathBuf,
        /// "group", "others" or "group and others".
        who: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a directory.
    #[error("load_balancer.state_dir: {path}: is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A file system call failed.
    #[error("load_balancer.state_dir: {path}: {error}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateDirError + '_ {
    move |error| StateDirError::Io {
        path: path.into(),
        error,
    }
}

/// Prepares `dir` for use at start: creates it `0700` when absent; refuses it when it exists and
/// is writable by group or others; otherwise makes it and everything in it private (directories
/// `0700`, files `0600`; symbolic links are left alone and not followed).
pub fn secure(dir: &Path) -> Result<(), StateDirError> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return create_dir_all(dir).map_err(io(dir));
        }
        Err(e) => return Err(io(dir)(e)),
        Ok(m) if !m.is_dir() => {
            return Err(StateDirError::NotADirectory { path: dir.into() });
        }
        Ok(m) => {
            let mode = m.permissions().mode() & 0o7777;
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => Some("group and others"),
                (true, false) => Some("group"),
                (false, true) => Some("others"),
                (false, false) => None,
            };
            if let Some(who) = who {
                return Err(StateDirError::Writable {
                    path: dir.into(),
                    who,
                    mode,
                });
            }
        }
    }
    tighten(dir, 0)
}

/// Sets `path` (not followed if a link) and, for a directory, what it holds to the private modes.
fn tighten(path: &Path, depth: usize) -> Result<(), StateDirError> {
    let m = std::fs::symlink_metadata(path).map_err(io(path))?;
    if m.file_type().is_symlink() {
        return Ok(());
    }
    let want = if m.is_dir() { DIR_MODE } else { FILE_MODE };
    if m.permissions().mode() & 0o777 & !want != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)).map_err(io(path))?;
    }
    if m.is_dir() && depth < MAX_DEPTH {
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            let entry = entry.map_err(io(path))?;
            tighten(&entry.path(), depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::scratch::mode;

    fn temp() -> PathBuf {
        portcullis_core::scratch::dir("pc-state")
    }

    #[test]
    fn creates_private_and_tightens_what_older_versions_left() {
        let base = temp();
        let dir = base.join("state");
        secure(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // As an older version left them: 0755 directories, 0644 files.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.join("lb")).unwrap();
        std::fs::set_permissions(dir.join("lb"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("lb/id"), "x").unwrap();
        std::fs::set_permissions(dir.join("lb/id"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        secure(&dir).unwrap();
        assert_eq!(
            (mode(&dir), mode(&dir.join("lb")), mode(&dir.join("lb/id"))),
            (0o700, 0o700, 0o600)
        );
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        let base = temp();
        for m in [0o777, 0o770, 0o703] {
            std::fs::set_permissions(&base, std::fs::Permissions::from_mode(m)).unwrap();
            let e = secure(&base).unwrap_err().to_string();
            assert!(
                e.starts_with("load_balancer.state_dir: ") && e.contains("writable by"),
                "{e}"
            );
            assert_eq!(mode(&base), m, "refused, not repaired");
        }
        std::fs::remove_dir_all(base).unwrap();
    }

    /// The state directory's callers create through the re-exports: what they make is private
    /// from the start, `secure` accepts it, and nothing is overwritten. (`private_file`'s own
    /// tests check each helper.)
    #[test]
    fn what_the_re_exports_create_is_private() {
        let base = temp();
        let dir = base.join("state");
        create_dir_all(&dir.join("lb")).unwrap();
        write_new(&dir.join("lb/id"), b"x").unwrap();
        open_append(&dir.join("outbox.jsonl")).unwrap();
        ensure_file(&dir.join("idp.sqlite3")).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&dir.join("lb")), DIR_MODE);
        assert_eq!(mode(&dir.join("lb/id")), FILE_MODE);
        assert_eq!(mode(&dir.join("outbox.jsonl")), FILE_MODE);
        assert_eq!(mode(&dir.join("idp.sqlite3")), FILE_MODE);
        secure(&dir).unwrap();
        assert!(
            write_new(&dir.join("lb/id"), b"y").is_err(),
            "never overwrites"
        );
        std::fs::remove_dir_all(base).unwrap();
    }
}
