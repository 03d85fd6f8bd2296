//! A throwaway Secret Service for the keyring tests: a D-Bus session bus of its own (Debian's
//! `dbus-daemon`, on a socket in a temporary directory) and `gnome-keyring-daemon` on it, its
//! login collection made and unlocked with a known password, its files in the same directory.
//! Nothing touches the user's real session or keyring; each test has its own.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::{in_ci, skips};

/// How long the bus and the keyring may take to be ready.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// The Secret Service's name on the bus.
const SECRETS: &str = "org.freedesktop.secrets";

/// The programs a keyring test needs, from Debian's `dbus`, `gnome-keyring` and
/// `libsecret-tools` (`.ci/run` installs them).
const PROGRAMS: [&str; 4] = ["dbus-daemon", "dbus-send", "gnome-keyring-daemon", "secret-tool"];

/// Whether the keyring's collection is made and unlocked at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    Yes,
    /// No password given: the collection stays locked, and only a desktop prompt could open it.
    No,
}

/// A running session bus with a Secret Service on it.
pub struct TestKeyring {
    dir: TempDir,
    bus: Child,
    daemon: Child,
    /// The bus's address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
}

impl TestKeyring {
    /// Starts the bus and an unlocked keyring; `None` (said loudly) when the programs are not
    /// installed outside CI, a failure under `CI=true`.
    pub fn start() -> Option<Self> {
        Self::start_with(Unlocked::Yes)
    }

    pub fn start_with(unlocked: Unlocked) -> Option<Self> {
        if let Some(missing) = PROGRAMS.iter().find(|program| which(program).is_none()) {
            assert!(!in_ci(), "{missing} is missing: CI installs Debian's dbus, gnome-keyring and libsecret-tools");
            skips::did_not_run(&format!("{missing} is not installed (dbus, gnome-keyring, libsecret-tools)"));
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        for sub in ["run", "home"] {
            std::fs::create_dir(dir.path().join(sub)).expect("a directory");
        }
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_config(&dir.path().join("run/bus"))).expect("the bus configuration");
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon starts");
        let address =
            first_line(bus.stdout.take().expect("piped"), READY_WITHIN).expect("dbus-daemon prints its address");
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--components=secrets"])
            .args((unlocked == Unlocked::Yes).then_some("--unlock"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon starts");
        let mut stdin = daemon.stdin.take().expect("piped");
        if unlocked == Unlocked::Yes {
            // The login collection's password, then end of input.
            stdin.write_all(b"throwaway keyring password").expect("the daemon takes its password");
        }
        drop(stdin);
        let keyring = Self { dir, bus, daemon, address };
        keyring.wait_for_service();
        Some(keyring)
    }

    /// Waits until the Secret Service owns its name on the bus, within [`READY_WITHIN`].
    fn wait_for_service(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let asked = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
                .args(["org.freedesktop.DBus.NameHasOwner", &format!("string:{SECRETS}")])
                .output()
                .expect("dbus-send runs");
            if String::from_utf8_lossy(&asked.stdout).contains("boolean true") {
                return;
            }
            assert!(Instant::now() < deadline, "gnome-keyring-daemon did not take {SECRETS} within {READY_WITHIN:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Points `command` at this keyring's session bus.
    pub fn apply(&self, command: &mut Command) {
        command.env("DBUS_SESSION_BUS_ADDRESS", &self.address).env("XDG_RUNTIME_DIR", self.dir.path().join("run"));
    }

    /// What the keyring holds for `attributes` (`secret-tool lookup`), if anything.
    pub fn lookup(&self, attributes: &[(&str, &str)]) -> Option<String> {
        let mut command = self.secret_tool("lookup", attributes);
        let out = command.output().expect("secret-tool runs");
        out.status.success().then(|| String::from_utf8(out.stdout).expect("a UTF-8 secret"))
    }

    /// How many items the keyring holds with `attributes` (`secret-tool search --all`).
    pub fn count(&self, attributes: &[(&str, &str)]) -> usize {
        let mut command = self.secret_tool("search", attributes);
        command.arg("--all");
        let out = command.output().expect("secret-tool runs");
        let listed = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        listed.lines().filter(|line| line.starts_with("[/")).count()
    }

    /// Adds an item with `attributes` holding `secret`, as another program would.
    pub fn add(&self, attributes: &[(&str, &str)], secret: &str) {
        let mut command = self.secret_tool("store", attributes);
        command.arg("--label=made by a test").stdin(Stdio::piped());
        let mut child = command.spawn().expect("secret-tool runs");
        child.stdin.take().expect("piped").write_all(secret.as_bytes()).expect("secret-tool reads the secret");
        assert!(child.wait().expect("secret-tool ends").success(), "secret-tool store");
    }

    /// Replaces what the keyring holds for `attributes` with `secret`, as another program would.
    pub fn replace(&self, attributes: &[(&str, &str)], secret: &str) {
        let cleared = self.secret_tool("clear", attributes).status().expect("secret-tool runs");
        assert!(cleared.success(), "secret-tool clear");
        self.add(attributes, secret);
    }

    fn secret_tool(&self, verb: &str, attributes: &[(&str, &str)]) -> Command {
        let mut command = Command::new("secret-tool");
        command.env("DBUS_SESSION_BUS_ADDRESS", &self.address).arg(verb);
        for (name, value) in attributes {
            command.args([name, value]);
        }
        command
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) the keyring daemon: a stopped one takes calls
    /// and never answers, like a keyring waiting for a prompt nobody sees.
    pub fn freeze(&self, frozen: bool) {
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let sent = Command::new("kill").args([signal, &self.daemon.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "kill {signal}");
    }

    /// The keyring's files (where its collections are kept, sealed with the password).
    pub fn files(&self) -> PathBuf {
        self.dir.path().join("home")
    }
}

impl Drop for TestKeyring {
    fn drop(&mut self) {
        self.freeze(false);
        for child in [&mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A session bus listening on `socket` only, with no service activation (nothing starts that
/// the test did not start), letting its clients talk to one another.
fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// The first line `output` writes, within `limit`.
fn first_line(output: impl std::io::Read + Send + 'static, limit: Duration) -> Option<String> {
    let (sender, line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(output).read_line(&mut first);
        let _ = sender.send(first.trim().to_owned());
    });
    line.recv_timeout(limit).ok().filter(|line| !line.is_empty())
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}
