//! Atomic, durable file writes: every file the host writes (the signing secret,
//! compiled components, self-test markers) goes through [`write_atomic`].
//!
//! The content goes to a temporary file in the same directory (mode 0600),
//! which is synced, renamed over the target and followed by a sync of the
//! directory, so after a crash or power loss the target holds either its old
//! content or the new, never a part, and a completed rename is not lost.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// What to do when the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    Replace,
    /// Leave it; the write fails with [`io::ErrorKind::AlreadyExists`].
    Keep,
}

/// Writes `parts`, one after the other, as the whole content of `path`.
pub fn write_atomic(path: &Path, parts: &[&[u8]], if_exists: IfExists) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // tempfile creates the file with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.as_file().sync_all()?;
    match if_exists {
        IfExists::Replace => file.persist(path).map(drop).map_err(|e| e.error)?,
        IfExists::Keep => file.persist_noclobber(path).map(drop).map_err(|e| e.error)?,
    }
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_whole_owner_only_files_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write_atomic(&path, &[b"one ", b"two"], IfExists::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one two");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        write_atomic(&path, &[b"three"], IfExists::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn the_temporary_file_is_made_beside_the_target_so_the_rename_stays_on_its_filesystem() {
        // /dev/shm is a tmpfs: a temporary file made anywhere else (the working directory)
        // could not be renamed into it.
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir_in("/dev/shm").expect("a directory on /dev/shm");
        let here = std::fs::metadata(".").unwrap().dev();
        assert_ne!(std::fs::metadata(dir.path()).unwrap().dev(), here, "/dev/shm is another filesystem");
        let path = dir.path().join("file");
        write_atomic(&path, &[b"content"], IfExists::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"content");
    }

    #[test]
    fn keep_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write_atomic(&path, &[b"first"], IfExists::Keep).unwrap();
        let error = write_atomic(&path, &[b"second"], IfExists::Keep).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
