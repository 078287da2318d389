//! Files and directories private to the user running Portcullis: directories `0700`, files
//! `0600`, the mode given at creation so that nothing is readable by others even for a moment.
//! The state directory (`portcullis_config::state_dir`), key files, TLS keys, outboxes and access
//! logs are all created through here.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of private directories (the state directory and those in it).
pub const DIR_MODE: u32 = 0o700;
/// The mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents with mode `0700` (existing ones keep theirs).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Opens `path` for appending, creating it `0600` (and its missing parents `0700`); an existing
/// file readable by others is made `0600` first.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    restrict(&f)?;
    Ok(f)
}

/// Creates `path` with `bytes`, mode `0600`; fails if it exists.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes sure `path` exists as a `0600` file (created empty, or narrowed if wider), so that a
/// library opening it afterwards (SQLite, which gives its `-wal` and `-shm` files the database
/// file's mode) never creates it with the default mode.
pub fn ensure_file(path: &Path) -> std::io::Result<()> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)?;
    restrict(&f)
}

/// Narrows an existing file `path` to `0600` if it is wider; absent is fine.
pub fn restrict_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Narrows an open file to `0600` if it is wider.
pub fn restrict(f: &File) -> std::io::Result<()> {
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::mode;

    #[test]
    fn files_are_created_private() {
        let base = crate::scratch::dir("pc-private");
        let f = base.join("sub/outbox.jsonl");
        open_append(&f).unwrap();
        assert_eq!((mode(&base.join("sub")), mode(&f)), (0o700, 0o600));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_append(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        write_new(&base.join("k"), b"x").unwrap();
        assert_eq!(mode(&base.join("k")), 0o600);
        assert!(
            write_new(&base.join("k"), b"y").is_err(),
            "never overwrites"
        );
        ensure_file(&base.join("db")).unwrap();
        assert_eq!(mode(&base.join("db")), 0o600);
        std::fs::set_permissions(base.join("db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        restrict_path(&base.join("db")).unwrap();
        assert_eq!(mode(&base.join("db")), 0o600);
        restrict_path(&base.join("absent")).unwrap();
        std::fs::remove_dir_all(base).unwrap();
    }
}
