//! `loom-bench`: measures the release host (HTTP load, start and swap times,
//! peak memory), folds in the boundary figures `cargo bench` left under
//! `target/criterion/`, prints one table and writes it to `bench/RESULTS.md`.
//! Run it through `just bench`, which builds everything first.

mod host;
mod import;
mod load;
mod pats;
mod policies;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use host::{Host, Process, components, install, sha256, target_dir};
use load::Request;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "correct horse battery staple";
const LOAD_TIME: Duration = Duration::from_secs(5);
/// Concurrent connections for the throughput runs (as wrk's `-c32`).
const CLIENTS: usize = 32;
/// Concurrent refresh chains (each its own session) for the refresh grant's throughput.
const REFRESH_CLIENTS: usize = 8;
/// Context switches per `/users/me/` request measured by this bench on commit
/// ab81935, before the hot path was tuned; the target is half of it.
const BASELINE_SWITCHES_PER_REQUEST: f64 = 6.05;
const CONTEXT_SWITCH_TARGET: &str = "≤ 3.03 (½ of 6.05 before)";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let default = components()?.join("auth-guest.wasm");
    if std::env::args().any(|a| a == "--hot-path") {
        // Only `/users/me/` against the ceiling, for profiling; RESULTS.md is left alone.
        println!("{}", render(&hot_path(&default).await?.0, cores)?);
        return Ok(());
    }
    if std::env::args().any(|a| a == "--import") {
        println!("{}", render(&[import_row(&default).await?], cores)?);
        return Ok(());
    }
    if std::env::args().any(|a| a == "--pats") {
        println!("{}", render(&pats::rows(&default).await?, cores)?);
        return Ok(());
    }
    if std::env::args().any(|a| a == "--policies") {
        let criterion = target_dir()?.join("criterion");
        println!("{}", render(&policies::rows(&default, &criterion).await?, cores)?);
        return Ok(());
    }
    if std::env::args().any(|a| a == "--backends") {
        println!("{}", render(&backends(&default).await?, cores)?);
        return Ok(());
    }
    let criterion = target_dir()?.join("criterion");
    let estimate = |id: &str| {
        criterion_median(&criterion.join(id))
            .with_context(|| format!("no criterion result {id}: run `cargo bench -p loom-bench` first"))
    };
    let verify_native = estimate("token_verify/native")?;
    let verify_wasm = estimate("token_verify/component")?;
    let verify_reused = estimate("token_verify/component_reused_instance")?;
    let verify_cached = estimate("token_verify/component_cached")?;
    let issue_native = estimate("token_issue/native")?;
    let issue_wasm = estimate("token_issue/component")?;
    let ed_verify_native = estimate("token_verify_eddsa/native")?;
    let ed_verify_wasm = estimate("token_verify_eddsa/component")?;
    let ed_issue_native = estimate("token_issue_eddsa/native")?;
    let ed_issue_wasm = estimate("token_issue_eddsa/component")?;
    let hash_native = estimate("argon2id_hash/native")?;
    let hash_wasm = estimate("argon2id_hash/component")?;
    let hash_plain = estimate("argon2id_hash/component_plain")?;
    let ed_verify_plain = estimate("token_verify_eddsa_plain/component")?;
    let ed_issue_plain = estimate("token_issue_eddsa_plain/component")?;
    let verify_plain = estimate("token_verify_plain/component")?;
    let signature_check = estimate("signature_check/component")?;

    let hardened = components()?.join("auth-guest-hardened.wasm");

    eprintln!("measuring start times…");
    let (cold_start, warm_start) = start_times(&default).await?;
    eprintln!("measuring swap times…");
    let (cold_swap, warm_swap) = swap_times(&default, &hardened).await?;

    let (hot_rows, hot_rss) = hot_path(&default).await?;

    eprintln!("measuring HTTP load…");
    let dir = tempfile::tempdir()?;
    let host = Host::start(dir.path(), &default).await?;
    let me = Request::get(&host.base_url, "/users/me/", Some(&account(&host).await?))?;
    let idle = load::run(me.clone(), 1, LOAD_TIME).await?;
    let token_load = load::run(token_request(&host)?, 8, LOAD_TIME).await?;
    let (mixed_me, _) =
        tokio::try_join!(load::run(me.clone(), 1, LOAD_TIME), load::run(token_request(&host)?, 8, LOAD_TIME))?;
    let peak_rss = host.process.peak_rss()?.max(hot_rss);
    drop(host);

    let hash_capacity = cores as f64 / hash_wasm.as_secs_f64();
    let me_p99 = (mixed_me.percentile(0.99), idle.percentile(0.99));
    let backend_rows = backends(&default).await?;
    let algorithm_row = algorithms(&default).await?;
    let import_row = import_row(&default).await?;
    let pat_rows = pats::rows(&default).await?;
    let policy_rows = policies::rows(&default, &criterion).await?;
    let mut rows = vec![
        Row::ratio("token verify: component vs native", us, (verify_wasm, verify_native), Some(Bound::AtMost(2.0))),
        Row::ratio("token issue: component vs native", us, (issue_wasm, issue_native), None),
        Row::ratio(
            "EdDSA token verify: component vs native",
            us,
            (ed_verify_wasm, ed_verify_native),
            Some(Bound::AtMost(1.5)),
        ),
        Row::ratio(
            "EdDSA token issue: component vs native",
            us,
            (ed_issue_wasm, ed_issue_native),
            Some(Bound::AtMost(1.5)),
        ),
        Row::ratio("EdDSA verify: SIMD + wide-arithmetic build vs plain", us, (ed_verify_wasm, ed_verify_plain), None),
        Row::ratio("EdDSA issue: SIMD + wide-arithmetic build vs plain", us, (ed_issue_wasm, ed_issue_plain), None),
        Row::ratio("HS256 verify: SIMD + wide-arithmetic build vs plain", us, (verify_wasm, verify_plain), None),
        algorithm_row,
        Row::ratio("token verify: fresh instance vs reused one", us, (verify_wasm, verify_reused), None),
        Row::ratio("token verify: a token checked before (cache) vs native", us, (verify_cached, verify_native), None),
        Row::ratio("argon2id hash: component vs native", ms, (hash_wasm, hash_native), Some(Bound::AtMost(1.5))),
        Row::ratio("argon2id hash: SIMD + wide-arithmetic build vs plain", ms, (hash_wasm, hash_plain), None),
        Row {
            what: "POST /token, 8 clients: vs cores ÷ one hash",
            measured: format!("{:.1} req/s vs {:.1}/s", token_load.per_second(), hash_capacity),
            ratio: Some(token_load.per_second() / hash_capacity),
            bound: Some(Bound::AtLeast(0.9)),
            absolute: None,
        },
        Row::ratio("/users/me/ p99: under saturated /token vs idle", ms, me_p99, Some(Bound::AtMost(5.0))),
        Row::plain(
            "start to first 200: warm cache (cold)",
            format!("{} ({})", ms(warm_start), ms(cold_start)),
            Some(("< 100 ms", warm_start < Duration::from_millis(100))),
        ),
        Row::plain(
            "swap to serving: warm cache (cold)",
            format!("{} ({})", ms(warm_swap), ms(cold_swap)),
            Some(("< 50 ms", warm_swap < Duration::from_millis(50))),
        ),
        Row::plain(
            "swap gate: signature check of the component",
            ms(signature_check),
            Some(("< 1 ms", signature_check < Duration::from_millis(1))),
        ),
        Row::plain(
            "peak RSS under load",
            format!("{:.1} MiB", peak_rss as f64 / (1 << 20) as f64),
            Some(("< 150 MiB", peak_rss < 150 << 20)),
        ),
    ];
    rows.splice(9..9, hot_rows);
    rows.extend(backend_rows);
    rows.extend(pat_rows);
    rows.extend(policy_rows);
    rows.push(import_row);
    let report = render(&rows, cores)?;
    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
    std::fs::write(&out, &report).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("written to {}", out.display());
    Ok(())
}

/// Rows the import bench reads: a million, the size the issue measured the old importer at.
const IMPORT_ROWS: u64 = 1_000_000;

/// `users import` of [`IMPORT_ROWS`] accounts: its peak memory against the whole table's
/// size in memory as the importer held it before (about 1.6 KB a row, 1.6 GB here).
async fn import_row(component: &Path) -> anyhow::Result<Row> {
    eprintln!("measuring an import of {IMPORT_ROWS} rows…");
    let measured = import::measure(component, IMPORT_ROWS).await?;
    let mib = measured.peak_rss as f64 / (1 << 20) as f64;
    Ok(Row::plain(
        "users import, 1,000,000 rows: peak RSS (time)",
        format!("{mib:.0} MiB ({:.0} s, {} rows)", measured.took.as_secs_f64(), measured.rows),
        Some(("< 256 MiB", measured.peak_rss < 256 << 20)),
    ))
}

/// `GET /users/me/` on a fresh host against the bare axum ceiling, with each
/// server's context switches; the rows and the host's peak RSS.
async fn hot_path(component: &Path) -> anyhow::Result<(Vec<Row>, u64)> {
    eprintln!("measuring GET /users/me/ under load…");
    let dir = tempfile::tempdir()?;
    let host = Host::start(dir.path(), component).await?;
    let me = Request::get(&host.base_url, "/users/me/", Some(&account(&host).await?))?;
    let me_load = switching(&host.process, load::run(me, CLIENTS, LOAD_TIME)).await?;
    let peak_rss = host.process.peak_rss()?;
    drop(host);

    eprintln!("measuring the bare axum ceiling…");
    let bare = host::bare_axum().await?;
    let ceiling =
        switching(&bare, load::run(Request::get(&bare.base_url, "/users/me/", None)?, CLIENTS, LOAD_TIME)).await?;
    drop(bare);
    let rows = vec![
        Row {
            what: "GET /users/me/ vs bare axum, 32 clients",
            measured: format!(
                "{:.0} req/s (p50 {}, p99 {}) vs {:.0} req/s",
                me_load.run.per_second(),
                ms(me_load.run.percentile(0.5)),
                ms(me_load.run.percentile(0.99)),
                ceiling.run.per_second()
            ),
            ratio: Some(me_load.run.per_second() / ceiling.run.per_second()),
            bound: Some(Bound::AtLeast(0.35)),
            absolute: None,
        },
        Row {
            what: "context switches per request: /users/me/ vs bare axum",
            measured: format!("{:.2} vs {:.2}", me_load.switches_per_request(), ceiling.switches_per_request()),
            ratio: Some(me_load.switches_per_request() / ceiling.switches_per_request()),
            bound: None,
            absolute: Some((
                CONTEXT_SWITCH_TARGET,
                me_load.switches_per_request() <= BASELINE_SWITCHES_PER_REQUEST / 2.0,
            )),
        },
    ];
    Ok((rows, peak_rss))
}

/// `/users/me/` and `/token` throughput on SQLite and on a throwaway PostgreSQL
/// server (same machine, loopback), in one run.
async fn backends(component: &Path) -> anyhow::Result<Vec<Row>> {
    let bin =
        loom_e2e::pg::binaries().context("PostgreSQL is not installed: the backend rows need initdb and postgres")?;
    let server = tokio::task::spawn_blocking(move || loom_e2e::pg::PgServer::start(&bin))
        .await?
        .map_err(|error| anyhow::anyhow!("cannot start a throwaway PostgreSQL: {error}"))?;
    let url = server.url.clone();
    let database = tokio::task::spawn_blocking(move || loom_e2e::PostgresDatabase::create(&url)).await?;
    let mut measured = Vec::new();
    for database_url in [None, Some(database.url.as_str())] {
        eprintln!("measuring on {}…", if database_url.is_some() { "PostgreSQL" } else { "SQLite" });
        let dir = tempfile::tempdir()?;
        let host = Host::start_on(dir.path(), component, database_url).await?;
        let me = Request::get(&host.base_url, "/users/me/", Some(&account(&host).await?))?;
        let me_load = load::run(me, CLIENTS, LOAD_TIME).await?;
        let token_load = load::run(token_request(&host)?, 8, LOAD_TIME).await?;
        let mut chains = Vec::new();
        for _ in 0..REFRESH_CLIENTS {
            chains.push(refresh_token(&host).await?);
        }
        let refresh_load = load::run_refresh_chains(&host.base_url, chains, LOAD_TIME).await?;
        measured.push((me_load.per_second(), token_load.per_second(), refresh_load));
    }
    tokio::task::spawn_blocking(move || drop((database, server))).await?;
    let [(me_sqlite, token_sqlite, ref refresh_sqlite), (me_pg, token_pg, ref refresh_pg)] = measured[..] else {
        unreachable!("two backends")
    };
    let refresh_row = |backend: &'static str, run: &load::Run| Row {
        what: backend,
        measured: format!(
            "{:.0} refreshes/s (p50 {}, p99 {})",
            run.per_second(),
            ms(run.percentile(0.5)),
            ms(run.percentile(0.99))
        ),
        ratio: None,
        bound: None,
        absolute: Some(("≥ 2000/s on SQLite", backend.contains("PostgreSQL") || run.per_second() >= 2000.0)),
    };
    Ok(vec![
        refresh_row("POST /token refresh grant, 8 chains: SQLite", refresh_sqlite),
        refresh_row("POST /token refresh grant, 8 chains: PostgreSQL", refresh_pg),
        Row {
            what: "GET /users/me/, 32 clients: PostgreSQL vs SQLite",
            measured: format!("{me_pg:.0} req/s vs {me_sqlite:.0} req/s"),
            ratio: Some(me_pg / me_sqlite),
            bound: Some(Bound::AtLeast(0.5)),
            absolute: None,
        },
        Row {
            what: "POST /token, 8 clients: PostgreSQL vs SQLite",
            measured: format!("{token_pg:.1} logins/s vs {token_sqlite:.1} logins/s"),
            ratio: Some(token_pg / token_sqlite),
            bound: None,
            absolute: None,
        },
    ])
}

/// Registers the bench account on `host` and logs in: its access token.
async fn account(host: &Host) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    http.post(format!("{}/users/", host.base_url))
        .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await?
        .error_for_status()?;
    login(host).await
}

/// `GET /users/me/` with an EdDSA token (a new installation's) against an HS256 one (after
/// `host-server keys rotate --alg hs256`), on one host: a token seen before is answered from
/// the verified-token cache, so the algorithm should hardly show.
async fn algorithms(component: &Path) -> anyhow::Result<Row> {
    eprintln!("measuring GET /users/me/ with EdDSA and HS256 tokens…");
    let dir = tempfile::tempdir()?;
    let host = Host::start(dir.path(), component).await?;
    let eddsa_token = account(&host).await?;
    let eddsa = load::run(Request::get(&host.base_url, "/users/me/", Some(&eddsa_token))?, CLIENTS, LOAD_TIME).await?;
    let rotated = std::process::Command::new(target_dir()?.join("release/host-server"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--component")
        .arg(component)
        .arg("--trusted-signers")
        .arg(target_dir()?.join("signing/dev.pub"))
        .args(["keys", "rotate", "--alg", "hs256"])
        .output()?;
    anyhow::ensure!(rotated.status.success(), "keys rotate failed: {}", String::from_utf8_lossy(&rotated.stderr));
    // The host picks the new key up within seconds: log in until the token is HS256.
    let deadline = Instant::now() + Duration::from_secs(30);
    let hs256_token = loop {
        let token = login(&host).await?;
        if algorithm(&token).as_deref() == Some("HS256") {
            break token;
        }
        anyhow::ensure!(Instant::now() < deadline, "the host never signed with the HS256 key");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let hs256 = load::run(Request::get(&host.base_url, "/users/me/", Some(&hs256_token))?, CLIENTS, LOAD_TIME).await?;
    Ok(Row {
        what: "GET /users/me/ with an EdDSA token vs an HS256 one, 32 clients",
        measured: format!("{:.0} req/s vs {:.0} req/s", eddsa.per_second(), hs256.per_second()),
        ratio: Some(eddsa.per_second() / hs256.per_second()),
        bound: Some(Bound::AtLeast(0.9)),
        absolute: None,
    })
}

/// The `alg` of a JWT's header.
fn algorithm(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(header["alg"].as_str()?.to_owned())
}

async fn login(host: &Host) -> anyhow::Result<String> {
    let grant: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", host.base_url))
        .form(&[("username", EMAIL), ("password", PASSWORD)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(grant["access_token"].as_str().context("a token")?.to_owned())
}

/// Logs in once more: a new session's refresh token.
async fn refresh_token(host: &Host) -> anyhow::Result<String> {
    let grant: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", host.base_url))
        .form(&[("username", EMAIL), ("password", PASSWORD)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(grant["refresh_token"].as_str().context("a refresh token")?.to_owned())
}

fn token_request(host: &Host) -> anyhow::Result<Request> {
    Request::post_form(&host.base_url, "/token", &[("username", EMAIL), ("password", PASSWORD)])
}

/// A load run with the server's context switches counted over it.
struct Switching {
    run: load::Run,
    switches: u64,
}

impl Switching {
    fn switches_per_request(&self) -> f64 {
        self.switches as f64 / self.run.requests as f64
    }
}

async fn switching(
    server: &Process,
    run: impl Future<Output = anyhow::Result<load::Run>>,
) -> anyhow::Result<Switching> {
    let before = server.context_switches()?;
    let run = run.await?;
    Ok(Switching { run, switches: server.context_switches()? - before })
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

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// A target on a ratio.
#[derive(Clone, Copy)]
enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

struct Row {
    what: &'static str,
    measured: String,
    ratio: Option<f64>,
    bound: Option<Bound>,
    /// For rows without a ratio: the target as text and whether it is met.
    absolute: Option<(&'static str, bool)>,
}

impl Row {
    /// `a` against `b`, each shown with `unit`, their ratio checked against `bound`.
    fn ratio(
        what: &'static str,
        unit: fn(Duration) -> String,
        (a, b): (Duration, Duration),
        bound: Option<Bound>,
    ) -> Self {
        let measured = format!("{} vs {}", unit(a), unit(b));
        Self { what, measured, ratio: Some(a.as_secs_f64() / b.as_secs_f64()), bound, absolute: None }
    }

    fn plain(what: &'static str, measured: String, absolute: Option<(&'static str, bool)>) -> Self {
        Self { what, measured, ratio: None, bound: None, absolute }
    }

    /// The target as text and whether the measurement meets it.
    fn target(&self) -> Option<(String, bool)> {
        match (self.bound, self.ratio, self.absolute) {
            (Some(Bound::AtMost(limit)), Some(ratio), _) => Some((format!("≤ {limit}×"), ratio <= limit)),
            (Some(Bound::AtLeast(limit)), Some(ratio), _) => Some((format!("≥ {limit}"), ratio >= limit)),
            (_, _, Some((text, met))) => Some((text.to_owned(), met)),
            _ => None,
        }
    }
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
        let ratio = r.ratio.map(|ratio| format!("{ratio:.2}")).unwrap_or_default();
        let (target, met) = match r.target() {
            Some((target, true)) => (target, "yes"),
            Some((target, false)) => (target, "**no**"),
            None => (String::new(), ""),
        };
        writeln!(out, "| {} | {} | {ratio} | {target} | {met} |", r.what, r.measured)?;
    }
    writeln!(out, "{NOTES}")?;
    Ok(out)
}

/// What bounds the targets that are not met, as far as measured.
const NOTES: &str = "
Notes on the boundary targets:
- Token verify: the host gives every call a fresh instance (pooling allocator, 256 KiB guest stack; with
  Linux's PAGEMAP_SCAN only the pages a call wrote are reset, up to 8 MiB in place) so nothing one caller
  leaves in guest memory reaches the next. That costs about 15 µs per call; the same check through one reused
  instance costs about 2× native, which would meet the target but give up the isolation. Resetting the first
  512 KiB whether written or not, as before PAGEMAP_SCAN, cost 4.5 µs more per call (27.9 µs then).
- The shipped guest is built with `simd128` and `wide-arithmetic` (64×64→128-bit multiplies, enabled in the
  host's engine) and curve25519-dalek's 64-bit backend (`curve25519_dalek_bits=\"64\"`); the plain build is
  the one before (the rows \"build vs plain\"). Natively, curve25519-dalek picks its AVX2 backend at run time:
  built with its serial backend (`--cfg curve25519_dalek_backend=\"serial\"`, what the guest runs), the native
  EdDSA verify took 59 µs instead of 40-43 µs, and the component's verify through a reused instance 64 µs. So
  1.5× native (60 µs) cannot be had with a fresh instance per call; signing uses no AVX2 (59 µs either way).
- argon2id: natively the argon2 crate picks an AVX2 compression (4 × 64-bit lanes) at run time; with that
  branch disabled (the same code on 128-bit SSE2, as wide as WebAssembly's SIMD) a native hash took 26.3-29 ms
  instead of 14.8-18.5 ms, in the same program. In the component the compression function is 77% of a hash
  and is vectorised (Cranelift emits AVX-512 forms of the 128-bit operations); the epoch checks at its loops'
  back edges, which let the host stop a runaway guest, cost 9% (23.0 ms without them); the rest is page faults
  on the part of the hash's 19 MiB a slot does not keep resident (33.8 ms with 512 KiB kept, 30.7 ms with
  8 MiB, 25.3 ms with all of it, which took peak RSS to 165 MiB). `simd128` took a fifth off; fat LTO with one
  codegen unit changed nothing.
- `/token` throughput is compared with one hash timed alone; two hashes at once share the memory bandwidth
  (19 MiB each), which is what the remaining few percent are.
- `/users/me/`: a token checked before is answered from the verified-token cache (no component call), and the
  account and revocation read runs inline on read-only SQLite connections instead of through sqlx's worker
  threads, whose hand-offs and pool pings made most of the host's context switches. The bare axum route is
  the ceiling: same JSON shape, no auth, no database, same load generator and connections.
- `/users/me/` on PostgreSQL: the lookup runs on a connection of its own (sqlx's pool pinged on acquire and
  release: three round trips a request; 13,700 → 19,500 req/s), and lookups that arrive together go to the
  server as one statement over arrays (`unnest ... WITH ORDINALITY`), one reader per two cores (19,700 → 46,000
  req/s; the server's cost is mostly per statement, so more readers, splitting the batches, served less).";
