//! A throwaway PostgreSQL server from the installed binaries (`initdb`,
//! `postgres`, `pg_isready`, `pg_ctl`): a fresh cluster in a temporary
//! directory, trust authentication, listening on a free loopback port only,
//! run as the `postgres` (or `nobody`) user when the caller is root, since
//! PostgreSQL refuses to run as root. Stopped and removed when dropped.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUPERUSER: &str = "loom";

/// A throwaway server of the caller's own (a test that stops and starts it).
/// Without PostgreSQL binaries: `None`, said loudly, outside CI; a failure under `CI=true`.
pub fn own() -> Option<PgServer> {
    let Some(bin) = binaries() else {
        assert!(!crate::in_ci(), "PostgreSQL is not installed (no initdb found): CI runs the PostgreSQL tests");
        crate::skips::did_not_run("PostgreSQL is not installed (no initdb found)");
        return None;
    };
    Some(PgServer::start(&bin).unwrap_or_else(|error| panic!("cannot start a throwaway PostgreSQL: {error}")))
}

/// The directory holding `initdb` and friends: where the `initdb` on `PATH`
/// really lives (symbolic links resolved), or Debian's newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .filter_map(|dir| Some(std::fs::canonicalize(dir.join("initdb")).ok()?.parent()?.to_owned()))
        .find(|bin| ["postgres", "pg_ctl", "pg_isready"].iter().all(|b| bin.join(b).is_file()));
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
            .filter(|(_, bin)| bin.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

/// A running throwaway cluster; stopped and deleted when dropped.
pub struct PgServer {
    /// `postgres://loom@127.0.0.1:PORT/postgres`.
    pub url: String,
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    postgres: Option<Child>,
    dir: tempfile::TempDir,
}

impl PgServer {
    /// A new cluster from the binaries in `bin` ([`binaries`]), accepting connections.
    pub fn start(bin: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("loom-pg-").tempdir().map_err(|e| e.to_string())?;
        let user = if is_root() { Some(unprivileged_user()?) } else { None };
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
            // Its parent (/tmp) is world-writable with the sticky bit; the cluster's own directory is private.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        }
        let data = dir.path().join("data");
        let initdb = Self::as_user(user, Command::new(bin.join("initdb")))
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--auth", "trust", "--encoding", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr).trim()));
        }
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let url = format!("postgres://{SUPERUSER}@127.0.0.1:{port}/postgres");
        let mut server = Self { url, bin: bin.to_owned(), data, port, user, postgres: None, dir };
        server.resume()?;
        Ok(server)
    }

    /// Starts the stopped server again on the same port and data.
    pub fn resume(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("postgres.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&log_path, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        let postgres = Self::as_user(self.user, Command::new(self.bin.join("postgres")))
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", self.dir.path().display()))
            // Throwaway: durability off; room for the parallel tests' pools.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("postgres: {e}"))?;
        self.postgres = Some(postgres);
        self.wait_ready()
    }

    /// Stops the server (fast: open connections are cut), keeping its data.
    pub fn pause(&mut self) {
        let stopped = Self::as_user(self.user, Command::new(self.bin.join("pg_ctl")))
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.data)
            .args(["--mode", "fast", "--silent"])
            .status()
            .is_ok_and(|s| s.success());
        if let Some(mut postgres) = self.postgres.take() {
            if !stopped {
                let _ = postgres.kill();
            }
            let _ = postgres.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Waits for the server to accept connections (`pg_isready`), or for it to die.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = self.port;
        loop {
            if let Some(Ok(Some(status))) = self.postgres.as_mut().map(Child::try_wait) {
                return Err(format!("postgres exited ({status}):\n{}", self.log()));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", SUPERUSER])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("postgres did not accept connections within 60 s:\n{}", self.log()));
            }
            // pg_isready answers at once; this paces the probes while the server starts.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn as_user(user: Option<(u32, u32)>, mut command: Command) -> Command {
        if let Some((uid, gid)) = user {
            command.uid(uid).gid(gid).env("HOME", "/tmp");
        }
        command
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.pause();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// The uid and gid of `postgres` (Debian's package makes it) or else `nobody`.
fn unprivileged_user() -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    };
    find("postgres").or_else(|| find("nobody")).ok_or_else(|| "no postgres or nobody user to run PostgreSQL as".into())
}
