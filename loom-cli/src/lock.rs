//! The lock `loom`s take turns under: an exclusive `flock` on the settings file's directory,
//! waited for at most [`PATIENCE`]. Another `loom` holds it for one refresh (a few seconds at
//! most); anything holding it longer is not a `loom` at work, and is named (on Linux, from
//! `/proc/locks`) instead of waited for without end.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a `loom` waits for the lock: longer than any refresh under it takes.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How often the lock is tried again while another holds it.
const RETRY_EVERY: Duration = Duration::from_millis(25);

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{0}")]
    Io(std::io::Error),
    /// Held by another process for longer than [`PATIENCE`]; who, when that can be told.
    #[error(
        "{holder} has held the lock on {dir} for more than {} seconds, so loom did not touch its settings; if \
         that is not another loom still at work, stop it and try again",
        PATIENCE.as_secs()
    )]
    Held { dir: String, holder: String },
}

/// An exclusive lock on `dir`, held until the returned file is dropped.
pub fn lock_dir(dir: &Path, patience: Duration) -> Result<File, LockError> {
    let lock = File::open(dir).map_err(LockError::Io)?;
    let deadline = Instant::now() + patience;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(std::fs::TryLockError::Error(error)) => return Err(LockError::Io(error)),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(RETRY_EVERY),
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = holder_of(&lock).unwrap_or_else(|| "another process".to_owned());
                return Err(LockError::Held { dir: dir.display().to_string(), holder });
            }
        }
    }
}

/// The process holding a `flock` on `file`, as "process 1234 (flock)": read from
/// `/proc/locks`, whose lines name the holder's pid and the locked file's device and inode.
fn holder_of(file: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = file.metadata().ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = holders(&locks, metadata.dev(), metadata.ino()).find(|pid| *pid != std::process::id())?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    Some(match name {
        Some(name) => format!("process {pid} ({})", name.trim()),
        None => format!("process {pid}"),
    })
}

/// The pids `/proc/locks` (text `locks`) lists as holding a lock on device `dev`, inode `ino`.
/// A line: `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF` (major and minor in hex);
/// lines of waiters start `1: ->` and are skipped.
fn holders(locks: &str, dev: u64, ino: u64) -> impl Iterator<Item = u32> + '_ {
    let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
    locks.lines().filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1).is_some_and(|kind| *kind == "->") {
            return None;
        }
        let (pid, place) = (fields.get(4)?, fields.get(5)?);
        let mut parts = place.split(':');
        let line_major = u64::from_str_radix(parts.next()?, 16).ok()?;
        let line_minor = u64::from_str_radix(parts.next()?, 16).ok()?;
        let line_ino = parts.next()?.parse::<u64>().ok()?;
        (line_major == major && line_minor == minor && line_ino == ino).then(|| pid.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines_name_their_holders() {
        let locks = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 5555 fd:01:1234567 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 77 fd:01:99 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 88 103:02:1234567 0 EOF\n";
        let dev = (0xfd << 8) | 0x01;
        assert_eq!(holders(locks, dev, 1_234_567).collect::<Vec<_>>(), [4242]);
        assert_eq!(holders(locks, (0x103 << 8) | 0x02, 1_234_567).collect::<Vec<_>>(), [88]);
        assert_eq!(holders(locks, dev, 99).collect::<Vec<_>>(), [77]);
        assert_eq!(holders(locks, dev, 5).count(), 0);
    }

    #[test]
    fn a_lock_held_elsewhere_is_waited_for_within_the_patience_and_its_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        // An open file description of its own: flock locks conflict between them, as between processes.
        let held = lock_dir(dir.path(), PATIENCE).unwrap();
        let started = Instant::now();
        let refused = lock_dir(dir.path(), Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200) && started.elapsed() < Duration::from_secs(5));
        assert!(matches!(refused, LockError::Held { .. }), "{refused}");
        assert!(refused.to_string().contains(&dir.path().display().to_string()), "{refused}");
        drop(held);
        assert!(lock_dir(dir.path(), Duration::ZERO).is_ok(), "free once dropped");
    }
}
