//! Files of the data directory are private to the user wxrisk runs as.
//!
//! Contract (Unix; elsewhere these are plain file operations):
//! - a directory wxrisk creates (the data directory, the SQLite file's directory, a key file's directory) is made
//!   mode 0700, every missing component of it;
//! - an existing directory is left as it is, with a warning when group or others may enter it: it may be a
//!   directory the operator chose and shares on purpose (`/srv`, a home directory), and changing its mode could
//!   break whatever else lives there — the files wxrisk keeps in it are 0600 either way;
//! - the SQLite database is created 0600 before SQLite opens it; SQLite gives its `-wal` and `-shm` files the
//!   database file's mode, so they are 0600 too. An existing database file (and its `-wal`/`-shm`) readable by
//!   group or others is tightened to 0600, with a warning: it is wxrisk's own file, and it holds complaints and
//!   payers' data;
//! - key files are created 0600 ([`write_private_file`]); one readable by group or others is refused by
//!   [`check_key_file_mode`] unless the operator explicitly allows it.

use std::path::Path;

/// Mode bits as a string like `0644`, for messages.
pub fn format_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The permission bits of `path`, when the platform has them.
pub fn mode_of(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Ok(Some(meta.permissions().mode() & 0o7777))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

/// Create `dir` and its missing parents with mode 0700; an existing `dir` is only checked (see the module docs).
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    if dir.is_dir() {
        warn_if_dir_is_open(dir);
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Warn when group or others may list or enter an existing directory of ours.
pub fn warn_if_dir_is_open(dir: &Path) {
    if let Ok(Some(mode)) = mode_of(dir)
        && mode & 0o077 != 0
    {
        tracing::warn!(
            path = %dir.display(),
            mode = %format_mode(mode),
            "the data directory is open to other users; wxrisk keeps its own files in it private (0600), but \
             `chmod 700` it unless it is shared on purpose"
        );
    }
}

/// Write a new file readable by its owner only (fails when the file exists).
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = private_options().open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Make sure the database file at `path` exists with mode 0600 before SQLite opens it (SQLite would create it
/// with the process umask, usually 0644); tighten an existing one and its `-wal`/`-shm` files.
pub fn prepare_database_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir_all(dir)?;
    }
    match private_options().open(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        tighten(&file);
    }
    Ok(())
}

/// Take group and others' access away from an existing file of ours, saying so.
fn tighten(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(Some(mode)) = mode_of(path) else { return };
        if mode & 0o077 == 0 {
            return;
        }
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                was = %format_mode(mode),
                "the database file was readable by other users; it is now private (0600)"
            ),
            Err(error) => tracing::warn!(
                path = %path.display(),
                mode = %format_mode(mode),
                %error,
                "the database file is readable by other users and cannot be made private; chmod 600 it"
            ),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A key file that group or others can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "master key file {path} has mode {mode}: other users can read it. Run `chmod 600 {path}`, or set \
     allow_readable_master_key_file = true (WXRISK_ALLOW_READABLE_MASTER_KEY_FILE=true) to start anyway"
)]
pub struct ReadableKeyFile {
    pub path: String,
    pub mode: String,
}

/// Refuse a key file readable by group or others, unless `allow_readable` (then warn).
pub fn check_key_file_mode(path: &Path, allow_readable: bool) -> Result<(), ReadableKeyFile> {
    let Ok(Some(mode)) = mode_of(path) else { return Ok(()) };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let refused = ReadableKeyFile { path: path.display().to_string(), mode: format_mode(mode) };
    if allow_readable {
        tracing::warn!(
            path = %path.display(),
            mode = %format_mode(mode),
            "the master key file is readable by other users (allowed by allow_readable_master_key_file)"
        );
        return Ok(());
    }
    Err(refused)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn created_directories_are_0700_and_existing_ones_are_left_alone() {
        let root = tempfile_dir("dirs");
        let deep = root.join("a").join("b");
        create_private_dir_all(&deep).expect("create");
        assert_eq!(mode(&root.join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        let shared = root.join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir_all(&shared).expect("exists");
        assert_eq!(mode(&shared), 0o755, "an existing directory is only warned about");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn database_files_are_created_private_and_existing_ones_tightened() {
        let root = tempfile_dir("db");
        let db = root.join("data").join("wxrisk.db");
        prepare_database_file(&db).expect("prepare");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&root.join("data")), 0o700);
        let wal = root.join("data").join("wxrisk.db-wal");
        std::fs::write(&wal, b"").expect("wal");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        prepare_database_file(&db).expect("again");
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn readable_key_files_are_refused_unless_allowed() {
        let root = tempfile_dir("key");
        let key = root.join("master.key");
        write_private_file(&key, b"k").expect("write");
        assert_eq!(mode(&key), 0o600);
        assert_eq!(check_key_file_mode(&key, false), Ok(()));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = check_key_file_mode(&key, false).expect_err("0644 refused").to_string();
        assert!(error.contains("0644") && error.contains(&format!("chmod 600 {}", key.display())), "{error}");
        assert_eq!(check_key_file_mode(&key, true), Ok(()));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(check_key_file_mode(&key, false).is_err(), "group-readable is refused too");
        let _ = std::fs::remove_dir_all(&root);
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("wxrisk-private-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tmp");
        dir
    }
}
