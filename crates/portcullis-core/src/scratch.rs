//! Scratch directories for tests that check what mode a file got (feature `scratch`, a
//! dev-dependency feature): written once for every crate whose tests create private files.
//! They panic on failure, as a test should.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A new directory under the system temp dir, unique to this process and moment, named after
/// `prefix`; the test removes it.
pub fn dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "{prefix}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    ));
    std::fs::create_dir_all(&d).expect("create a scratch directory");
    d
}

/// The permission bits of `path` (followed if a link).
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("stat a scratch file")
        .permissions()
        .mode()
        & 0o777
}
