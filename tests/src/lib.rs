//! End-to-end test support: starts the real `host-server` binary with the real
//! auth component on a free port and its own temporary data directory, the way
//! zero-to-production's `spawn_app` does, and waits until it is ready.
//!
//! The binaries and the component come from this workspace's `target/`, which
//! `just test` builds before running the tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub use database::{
    Backend, POSTGRES_URL_VAR, PostgresDatabase, TestDatabase, in_ci, postgres_server, query_one, run_sql,
};
use tempfile::TempDir;

mod database;
pub mod keyring;
pub mod loom;
pub mod pg;
pub mod policy;
pub mod skips;
pub mod totp;

/// How long a host may take to start listening (it compiles the component first).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `target/<profile>/`, where cargo put the binaries: the parent of this test's `deps/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    exe.parent().and_then(Path::parent).expect("test binaries live in target/<profile>/deps").to_owned()
}

/// A workspace binary, e.g. `host-server` or `loom`.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(path.exists(), "{} is missing: build the workspace first (`just test` does)", path.display());
    path
}

/// A component under `target/components/` (`just build-guest` and `just build-fixtures` make them),
/// e.g. `auth-guest.wasm`, `auth-guest-hardened.wasm`, `fixtures/evil.wasm`.
pub fn built_component(name: &str) -> PathBuf {
    let target = bin_dir().parent().expect("target/<profile> has a parent").to_owned();
    let path = target.join("components").join(name);
    assert!(path.exists(), "{} is missing: run `just build-guest build-fixtures`", path.display());
    path
}

/// A program of the Python tools' virtualenv, `target/py/bin/<name>` (`just py-tools` makes it).
/// Without it, outside CI, says loudly that the test does not run; under `CI=true`, fails.
pub fn python_tool(name: &str) -> Option<PathBuf> {
    let target = bin_dir().parent().expect("target/<profile> has a parent").to_owned();
    let path = target.join("py/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(!in_ci(), "{} is missing: `just test` installs the Python tools (`just py-tools`)", path.display());
    skips::did_not_run(&format!("{} is missing (no python3 venv? `just py-tools` makes it)", path.display()));
    None
}

/// Debian's Chromium and its WebDriver, when installed (`.ci/run` installs them). Without them,
/// outside CI, says loudly that the test does not run; under `CI=true`, fails.
pub fn chromium() -> Option<(PathBuf, PathBuf)> {
    let (browser, driver) = (PathBuf::from("/usr/bin/chromium"), PathBuf::from("/usr/bin/chromedriver"));
    if browser.exists() && driver.exists() {
        return Some((browser, driver));
    }
    assert!(!in_ci(), "chromium or chromedriver is missing: CI installs Debian's chromium and chromium-driver");
    skips::did_not_run("chromium or chromedriver is not installed");
    None
}

/// The auth component `just build-guest` makes.
pub fn component() -> PathBuf {
    built_component("auth-guest.wasm")
}

/// Hex SHA-256 of a file, as `/healthz` reports a component's digest.
pub fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `from` beside `to`, then renames it over `to`, as `just swap` does;
/// its signature (`from.minisig`) goes first when there is one.
pub fn install(from: &Path, to: &Path) {
    let (from_signature, to_signature) = (signature(from), signature(to));
    if from_signature.exists() {
        let staging = to.with_extension("sig-installing");
        std::fs::copy(&from_signature, &staging).expect("the signature copies");
        std::fs::rename(&staging, &to_signature).expect("the signature is renamed into place");
    }
    let staging = to.with_extension("installing");
    std::fs::copy(from, &staging).expect("the component copies");
    std::fs::rename(&staging, to).expect("the component is renamed into place");
}

/// `<component>.minisig`, where the host looks for a component's signature.
pub fn signature(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// The public key of the development signing key (`just build-guest` makes it and signs with it).
pub fn dev_signers() -> PathBuf {
    let target = bin_dir().parent().expect("target/<profile> has a parent").to_owned();
    let path = target.join("signing/dev.pub");
    assert!(path.exists(), "{} is missing: run `just build-guest`", path.display());
    path
}

/// The compiled-code cache test hosts share: `target/<profile>/test-compiled/`.
pub fn shared_cache() -> PathBuf {
    bin_dir().join("test-compiled")
}

/// Settings a test may change from the host's defaults.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    pub token_ttl: Option<u32>,
    pub leeway: Option<u32>,
    /// Extra `--flag value` arguments.
    pub args: Vec<String>,
    /// The component to serve; the default one when `None`.
    pub component: Option<PathBuf>,
    /// `RUST_LOG` for the host; `info` when `None`.
    pub log_filter: Option<String>,
    /// The database: `None` for a fresh one on the suite's backend
    /// ([`Backend::from_env`]); another host's ([`TestHost::database`]) to share it.
    pub database: Option<TestDatabase>,
    /// Keep compiled components in the data directory, as a host does by default. Otherwise
    /// hosts share one cache (`--cache-dir`) in `target/<profile>/`, so each component is
    /// compiled once per run rather than once per host.
    pub own_cache: bool,
}

/// A host started but maybe not listening yet.
pub struct Starting {
    child: Child,
    announced: mpsc::Receiver<String>,
    logs: Arc<Mutex<String>>,
    data_dir: PathBuf,
    database: TestDatabase,
}

impl Starting {
    /// Everything the host has logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits (at most a minute) for the host to say where it listens.
    pub fn wait(mut self) -> TestHost {
        let base_url = match self.announced.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("host-server did not start listening; its log:\n{}", self.logs());
            }
        };
        TestHost {
            child: self.child,
            base_url,
            data_dir: self.data_dir,
            database_url: self.database.url.clone(),
            database: self.database,
            logs: self.logs,
            _own_dir: None,
        }
    }
}

/// A running host. Killed when dropped; its data directory lives as long as the
/// [`TempDir`] the test holds.
pub struct TestHost {
    child: Child,
    pub base_url: String,
    pub data_dir: PathBuf,
    /// The database it serves from (`sqlite://…` or `postgres://…`).
    pub database_url: String,
    database: TestDatabase,
    logs: Arc<Mutex<String>>,
    /// Keeps the data directory alive when the host owns it.
    _own_dir: Option<TempDir>,
}

impl TestHost {
    /// A host with default settings in a fresh temporary data directory.
    pub fn spawn() -> Self {
        Self::spawn_with(HostOptions::default())
    }

    pub fn spawn_with(options: HostOptions) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut host = Self::spawn_in(dir.path(), options);
        host._own_dir = Some(dir);
        host
    }

    /// A host on an existing data directory (for restarts), on a fresh port.
    pub fn spawn_in(data_dir: &Path, options: HostOptions) -> Self {
        Self::start_in(data_dir, options).wait()
    }

    /// Starts a host without waiting for it to listen ([`Starting::wait`] does).
    pub fn start_in(data_dir: &Path, options: HostOptions) -> Starting {
        let database = options.database.unwrap_or_else(|| TestDatabase::fresh(Backend::from_env(), data_dir));
        let mut command = Command::new(binary("host-server"));
        command
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--database-url")
            .arg(&database.url)
            .arg("--component")
            .arg(options.component.unwrap_or_else(component));
        if !options.own_cache && !options.args.iter().any(|a| a == "--cache-dir") {
            command.arg("--cache-dir").arg(shared_cache());
        }
        let chooses_trust = options.args.iter().any(|a| a == "--allow-unsigned" || a == "--trusted-signers");
        if !chooses_trust {
            command.arg("--trusted-signers").arg(dev_signers());
        }
        command
            .args(options.args)
            .env("RUST_LOG", options.log_filter.as_deref().unwrap_or("info"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for var in [
            "DATABASE_URL",
            "LOOM_AUTH_SECRET_FILE",
            "LOOM_AUTH_ISSUER",
            "LOOM_AUTH_TOKEN_TTL",
            "LOOM_AUTH_LEEWAY",
            "LOOM_AUTH_TRUSTED_SIGNERS",
            "LOOM_AUTH_ALLOW_UNSIGNED",
            "LOOM_AUTH_CACHE_DIR",
        ] {
            command.env_remove(var);
        }
        if let Some(ttl) = options.token_ttl {
            command.arg("--token-ttl").arg(ttl.to_string());
        }
        if let Some(leeway) = options.leeway {
            command.arg("--leeway").arg(leeway.to_string());
        }
        let mut child = command.spawn().expect("host-server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let logs = Arc::new(Mutex::new(String::new()));
        let (ready, announced) = mpsc::channel();
        let sink = Arc::clone(&logs);
        // Read the log until the host says where it listens, then keep draining it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = url_after(&line, "listening on ") {
                    let _ = ready.send(url);
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        Starting { child, announced, logs, data_dir: data_dir.to_owned(), database }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The host's database, to start another host on it (which keeps it alive too).
    pub fn database(&self) -> TestDatabase {
        self.database.clone()
    }

    /// Runs one SQL statement on the host's database, behind its back.
    pub fn sql(&self, statement: &str) {
        database::run_sql(&self.database_url, statement);
    }

    /// Everything the host has logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits (at most 10 seconds) until the host's log holds `needle`: a line the host has
    /// written may not have been read from its pipe yet. Fails the test with the log otherwise.
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_logs(&format!("{needle:?}"), |logs| logs.contains(needle));
    }

    /// Waits (at most 10 seconds) until the host's log holds `needle` exactly `times` times.
    pub fn wait_for_log_count(&self, needle: &str, times: usize) {
        self.wait_for_logs(&format!("{needle:?} {times} times"), |logs| logs.matches(needle).count() == times);
    }

    fn wait_for_logs(&self, what: &str, done: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !done(&self.logs()) {
            assert!(std::time::Instant::now() < deadline, "the log never said {what}:\n{}", self.logs());
            // Polling the log reader's buffer: the line is on its way through the pipe.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where the host serves its metrics (`--metrics-bind`), as its log says.
    pub fn metrics_url(&self) -> String {
        let logs = self.logs();
        logs.lines()
            .find_map(|line| url_after(line, "serving metrics at "))
            .unwrap_or_else(|| panic!("the host announced no metrics address:\n{logs}"))
    }

    /// `host-server` as an administrator runs it on this host's data directory and database, with
    /// the component and signers the tests trust: add settings and a subcommand.
    pub fn admin_command(&self) -> Command {
        let mut command = Command::new(binary("host-server"));
        command.arg("--data-dir").arg(&self.data_dir).arg("--database-url").arg(&self.database_url);
        command.arg("--component").arg(component()).arg("--trusted-signers").arg(dev_signers());
        command.env_remove("DATABASE_URL").env_remove("LOOM_AUTH_DATA_DIR");
        command
    }

    /// The host's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the host SIGTERM and waits (at most a minute) for it to exit: its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {}", self.pid());
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("the host's status") {
                return status.code();
            }
            assert!(std::time::Instant::now() < deadline, "the host did not exit after SIGTERM");
            // Polling a child's exit: there is no readiness to wait on but the exit itself.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the host and waits for it to exit.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The URL that follows `marker` in a log line, text or JSON (where a quote ends it).
fn url_after(line: &str, marker: &str) -> Option<String> {
    let rest = line.split(marker).nth(1)?;
    let url: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
    (!url.is_empty()).then_some(url)
}

/// An HTTP client that never follows redirects, so tests see exactly what the host answers.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

/// Sends `count` different wrong passwords for `email` at once, spread over `hosts` in turn;
/// the statuses they got.
pub async fn parallel_wrong_guesses(hosts: &[&TestHost], email: &str, count: usize) -> Vec<reqwest::StatusCode> {
    let guesses: Vec<_> = (0..count)
        .map(|n| {
            let form = [("username", email.to_owned()), ("password", format!("wrong guess {n}"))];
            tokio::spawn(client().post(hosts[n % hosts.len()].url("/token")).form(&form).send())
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.expect("the guess ran").expect("the host answered").status());
    }
    statuses
}

/// `GET /healthz`'s JSON.
pub async fn health(host: &TestHost) -> serde_json::Value {
    client().get(host.url("/healthz")).send().await.unwrap().json().await.unwrap()
}

/// Polls `/healthz` until `done` holds (bounded): readiness, not a sleep.
pub async fn wait_for(host: &TestHost, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let health = health(host).await;
        if done(&health) {
            return health;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; /healthz says {health}\nlog:\n{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Registers `email` with `password` and returns the created account's JSON.
pub async fn register(host: &TestHost, email: &str, password: &str) -> serde_json::Value {
    let response = client()
        .post(host.url("/users/"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("POST /users/ answers");
    assert_eq!(response.status(), 201, "registering {email}");
    response.json().await.expect("a JSON account")
}

/// Logs in and returns the access token.
pub async fn login(host: &TestHost, email: &str, password: &str) -> String {
    let response = client()
        .post(host.url("/token"))
        .form(&[("username", email), ("password", password)])
        .send()
        .await
        .expect("POST /token answers");
    assert_eq!(response.status(), 200, "logging in as {email}");
    let body: serde_json::Value = response.json().await.expect("a JSON token");
    body["access_token"].as_str().expect("an access_token").to_owned()
}

/// A project directory for `loom`, with its settings file path.
pub struct Project {
    pub dir: TempDir,
}

impl Project {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    /// `dev-automation.config.json` in the project directory (where `loom` looks by default).
    pub fn settings(&self) -> PathBuf {
        self.dir.path().join("dev-automation.config.json")
    }

    /// `loom ARGS` run in the project directory, with no `LOOM_*` variables from the caller and
    /// a user configuration of the project's own (`user-config/`: which servers this user has
    /// logged in to), so tests never share or touch the real one.
    pub fn loom(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("loom"));
        command.current_dir(self.dir.path()).args(args).env_remove("RUST_BACKTRACE");
        for var in ["LOOM_SERVER", "LOOM_CONFIG", "LOOM_TOKEN", "LOOM_CREDENTIAL_STORE", "DBUS_SESSION_BUS_ADDRESS"] {
            command.env_remove(var);
        }
        // No session bus (so never the user's keyring) unless a test gives one of its own.
        command
            .env("XDG_CONFIG_HOME", self.user_config())
            .env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("no-session"));
        command
    }

    /// The user configuration directory `loom` runs with (`$XDG_CONFIG_HOME`).
    pub fn user_config(&self) -> PathBuf {
        self.dir.path().join("user-config")
    }

    /// Records `server` as one this user has logged in to from this machine, as `loom login` does.
    pub fn know_server(&self, server: &str) {
        let dir = self.user_config().join("loom");
        std::fs::create_dir_all(&dir).expect("the user configuration directory");
        let path = dir.join("known-servers.json");
        let mut servers: Vec<String> = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|v| serde_json::from_value(v["servers"].clone()).ok())
            .unwrap_or_default();
        servers.push(server.to_owned());
        std::fs::write(&path, serde_json::json!({ "servers": servers }).to_string()).expect("known servers written");
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished `loom` run said.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// How long a command the tests run may take unless a test says otherwise: far more than any
/// needs, so that one that hangs fails the test with its name instead of stalling the suite.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Runs `command`, which must finish within `limit` (it is killed and the test fails
/// otherwise: a host that wrongly starts would serve forever), and collects its output.
pub fn run_within(mut command: Command, limit: Duration) -> Outcome {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = format!("{command:?}");
    finish_within(command.spawn().expect("the command starts"), &program, limit)
}

/// Runs `command` to completion, feeding `stdin` (or nothing), and collects its output; it
/// must finish within [`COMMAND_LIMIT`].
pub fn run(mut command: Command, stdin: Option<&str>) -> Outcome {
    use std::io::Write;
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = format!("{command:?}");
    let mut child = command.spawn().expect("the command starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(input) = stdin {
        // A command may rightly exit without reading its input (it refused something first).
        match pipe.write_all(input.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("stdin takes the input: {e}"),
            _ => {}
        }
    }
    drop(pipe);
    finish_within(child, &program, COMMAND_LIMIT)
}

/// Waits for `child` (`program`, for the failure) at most `limit` and collects its output;
/// kills it and fails the test after that.
pub fn finish_within(child: Child, program: &str, limit: Duration) -> Outcome {
    let (done, finished) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(limit) {
        Ok(output) => {
            let output = output.expect("the command finishes");
            Outcome {
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{program} did not finish within {limit:?}");
        }
    }
}
