//! Owner-only permissions for embedded databases and the folder that holds them.
//!
//! The directory database holds SIP digest HA1 values (password equivalents) and the role
//! databases hold OAuth signing keys, so neither may be readable by other local users. SQLite
//! creates files 0644 and gives its `-wal` and `-shm` files the database file's mode, so the
//! database file is created 0600 before SQLite opens it. A file or folder found open to group or
//! others at open is restricted (owner bits kept) with a warning. Shared folders are left alone:
//! one with the sticky bit (`/tmp`) or owned by another user than the database file.

use std::path::Path;

use crate::StoreError;

/// Database file mode.
pub const FILE_MODE: u32 = 0o600;
/// Mode of the folder holding databases (the data directory).
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) owner-only, or restricts it to its owner if it exists:
/// for the data directory, wherever it is created.
pub fn secure_data_dir(dir: &Path) -> Result<(), StoreError> {
    imp::secure_dir(dir, None)
}

/// Prepares the SQLite database at `path` before it is opened: its folder created owner-only
/// (or restricted, see the module doc), the file created 0600 when missing, the file and its
/// `-wal` and `-shm` companions restricted when open to others.
pub(crate) fn secure_sqlite(path: &Path) -> Result<(), StoreError> {
    imp::secure_sqlite(path)
}

#[cfg(unix)]
mod imp {
    use std::fs;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    use super::{DIR_MODE, FILE_MODE};
    use crate::StoreError;

    const STICKY: u32 = 0o1000;

    fn err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Permissions { path: path.display().to_string(), source }
    }

    pub fn secure_sqlite(path: &Path) -> Result<(), StoreError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|source| StoreError::Folder { path: dir.display().to_string(), source })?;
        }
        fs::OpenOptions::new().append(true).create(true).mode(FILE_MODE).open(path).map_err(err(path))?;
        let owner = fs::metadata(path).map_err(err(path))?.uid();
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if file.exists() {
                restrict(&file, FILE_MODE, "database file")?;
            }
        }
        secure_dir(dir, Some(owner))
    }

    /// Restricts (or creates) `dir`; `owner`: leave it alone unless this user owns it.
    pub fn secure_dir(dir: &Path, owner: Option<u32>) -> Result<(), StoreError> {
        if !dir.exists() {
            return fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|source| StoreError::Folder { path: dir.display().to_string(), source });
        }
        let meta = fs::metadata(dir).map_err(err(dir))?;
        if meta.mode() & STICKY != 0 || owner.is_some_and(|o| o != meta.uid()) {
            return Ok(());
        }
        restrict(dir, DIR_MODE, "data directory")
    }

    /// Clears the group and other bits of `path` when it has any that `allowed` lacks.
    fn restrict(path: &Path, allowed: u32, what: &str) -> Result<(), StoreError> {
        let mode = fs::metadata(path).map_err(err(path))?.permissions().mode() & 0o7777;
        if mode & 0o077 & !allowed == 0 {
            return Ok(());
        }
        let fixed = mode & !0o077 & 0o7777;
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            fixed = format!("{fixed:o}"),
            "{what} was open to other users; restricting it to its owner"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(fixed)).map_err(err(path))
    }
}

#[cfg(not(unix))]
mod imp {
    use std::path::Path;

    use crate::StoreError;

    // Other platforms keep their default ACLs: the folder and file are created as usual.
    pub fn secure_sqlite(path: &Path) -> Result<(), StoreError> {
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => secure_dir(dir, None),
            None => Ok(()),
        }
    }

    pub fn secure_dir(dir: &Path, _owner: Option<u32>) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder { path: dir.display().to_string(), source })
    }
}
