//! Starting the release host for a measurement, and reading its memory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// `target/`, from this binary's place in `target/release/`.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.ancestors().nth(2).context("the bench binary lives in target/release/")?.to_owned())
}

pub fn components() -> anyhow::Result<PathBuf> {
    Ok(target_dir()?.join("components"))
}

/// A server process the bench started, killed when dropped.
pub struct Process {
    child: Child,
    pub base_url: String,
}

impl Process {
    /// Spawns `command` and waits until it prints "listening on URL" to stderr.
    pub async fn spawn(mut command: Command) -> anyhow::Result<Self> {
        let program = command.get_program().to_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let base_url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await?
            .with_context(|| format!("{} never said where it listens", program.display()))?;
        Ok(Self { child, base_url })
    }

    /// Peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        Ok(status_field(&status, "VmHWM:")? * 1024)
    }

    /// Context switches (voluntary and not) of all the process's threads so far.
    /// `/proc/<pid>/status` counts only the main thread, so this sums the tasks.
    pub fn context_switches(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        for task in std::fs::read_dir(format!("/proc/{}/task", self.child.id()))? {
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue; // a thread that ended meanwhile
            };
            total += status_field(&status, "voluntary_ctxt_switches:")?
                + status_field(&status, "nonvoluntary_ctxt_switches:")?;
        }
        Ok(total)
    }
}

fn status_field(status: &str, name: &str) -> anyhow::Result<u64> {
    let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} in /proc status"))?;
    Ok(line[name.len()..].split_whitespace().next().context("a value")?.parse()?)
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The release host, started and healthy.
pub struct Host {
    pub process: Process,
    pub base_url: String,
    /// From spawning the process to its first `200` from `/healthz`.
    pub start_time: Duration,
}

impl Host {
    /// Starts `host-server` on a free port, waits for `/healthz` to answer 200.
    pub async fn start(data_dir: &Path, component: &Path) -> anyhow::Result<Self> {
        Self::start_on(data_dir, component, None).await
    }

    /// As [`Host::start`], on the database at `database_url` when one is given.
    pub async fn start_on(data_dir: &Path, component: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with(data_dir, component, database_url, &[]).await
    }

    /// As [`Host::start_on`], with `extra` arguments (a policy, say).
    pub async fn start_with(
        data_dir: &Path,
        component: &Path,
        database_url: Option<&str>,
        extra: &[&std::ffi::OsStr],
    ) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut command = Command::new(target_dir()?.join("release/host-server"));
        command.args(extra);
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--component")
            .arg(component)
            .arg("--trusted-signers")
            .arg(target_dir()?.join("signing/dev.pub"))
            // The load measures hashing capacity: one account logging in from many
            // connections at once must not meet the login throttle.
            .args(["--login-max-failures", "1000000", "--login-max-failures-per-address", "1000000"])
            .env("RUST_LOG", "warn,host_server=info");
        let process = Process::spawn(command).await?;
        let base_url = process.base_url.clone();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{base_url}/healthz")).send().await
                && r.status() == 200
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the host did not become healthy");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Self { start_time: started.elapsed(), process, base_url })
    }
}

/// The bare axum server that stands for the throughput ceiling.
pub async fn bare_axum() -> anyhow::Result<Process> {
    Process::spawn(Command::new(target_dir()?.join("release/bare-axum"))).await
}

pub fn sha256(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    Ok(sha2::Sha256::digest(std::fs::read(path)?).iter().map(|b| format!("{b:02x}")).collect())
}

/// Copies `from` beside `to` and renames it into place, as `just swap` does.
pub fn install(from: &Path, to: &Path) -> anyhow::Result<()> {
    // The signature first, so the component never lands beside a stale one.
    for (from, to) in [(signature(from), signature(to)), (from.to_owned(), to.to_owned())] {
        let staging = to.with_extension("installing");
        std::fs::copy(&from, &staging)?;
        std::fs::rename(&staging, &to)?;
    }
    Ok(())
}

fn signature(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}
