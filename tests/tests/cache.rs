//! The compiled-code cache and the self-test memo: a restart reuses what this
//! host compiled and checked, and nothing else. Entries are authenticated with
//! a host-local key; the memo is keyed by everything its checks depend on.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use loom_e2e::{HostOptions, TestHost, binary, built_component, client, dev_signers, login, register};
use serde_json::Value;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery staple";

async fn from_cache(host: &TestHost) -> bool {
    let health: Value = client().get(host.url("/healthz")).send().await.unwrap().json().await.unwrap();
    health["component"]["from_cache"].as_bool().unwrap()
}

/// The compiled entries (`*.cwasm`) in a data directory's cache.
fn entries(data_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(data_dir.join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    found.sort();
    found
}

const NOT_WRITTEN_HERE: &str = "ignoring a compiled-component cache entry this host did not write";

#[tokio::test]
async fn a_restart_takes_the_compiled_component_from_the_cache_unless_it_was_changed() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestHost::spawn_in(dir.path(), HostOptions { own_cache: true, ..Default::default() });
    assert!(!from_cache(&first).await);
    assert!(first.logs().contains("origin=Compiled"), "{}", first.logs());
    first.stop();

    let second = TestHost::spawn_in(dir.path(), HostOptions { own_cache: true, ..Default::default() });
    assert!(from_cache(&second).await);
    assert!(second.logs().contains("origin=Cache"), "{}", second.logs());
    assert!(second.logs().contains("these bytes passed before"), "{}", second.logs());
    second.stop();

    // One changed byte in the native code: noticed, ignored and rebuilt.
    for path in entries(dir.path()) {
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    }
    let third = TestHost::spawn_in(dir.path(), HostOptions { own_cache: true, ..Default::default() });
    assert!(!from_cache(&third).await);
    assert!(third.logs().contains(NOT_WRITTEN_HERE), "{}", third.logs());
    register(&third, EMAIL, PASSWORD).await;
    login(&third, EMAIL, PASSWORD).await;
}

#[tokio::test]
async fn an_entry_copied_from_another_hosts_cache_is_recompiled_not_loaded() {
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    TestHost::spawn_in(ours.path(), HostOptions { own_cache: true, ..Default::default() }).stop();
    TestHost::spawn_in(theirs.path(), HostOptions { own_cache: true, ..Default::default() }).stop();
    // Same component, same engine: the same entry name, but the other host's key.
    let (our_entries, their_entries) = (entries(ours.path()), entries(theirs.path()));
    assert_eq!(our_entries.len(), 1);
    assert_eq!(our_entries[0].file_name(), their_entries[0].file_name());
    std::fs::copy(&their_entries[0], &our_entries[0]).unwrap();

    let host = TestHost::spawn_in(ours.path(), HostOptions { own_cache: true, ..Default::default() });
    assert!(!from_cache(&host).await, "a foreign entry must never be loaded");
    assert!(host.logs().contains(NOT_WRITTEN_HERE), "{}", host.logs());
    host.stop();
    // Recompiled and stored under our key: the next restart uses it.
    let again = TestHost::spawn_in(ours.path(), HostOptions { own_cache: true, ..Default::default() });
    assert!(from_cache(&again).await);
}

#[tokio::test]
async fn a_smaller_memory_cap_runs_the_self_test_again() {
    // The hardened component hashes with 32 MiB: it passes at the default cap (64 MiB),
    // and must be refused, not waved through by its memo, at 20 MiB.
    let dir = tempfile::tempdir().unwrap();
    let hardened = built_component("auth-guest-hardened.wasm");
    let options = HostOptions { component: Some(hardened.clone()), own_cache: true, ..Default::default() };
    TestHost::spawn_in(dir.path(), options.clone()).stop();
    let again = TestHost::spawn_in(dir.path(), options);
    assert!(again.logs().contains("these bytes passed before"), "{}", again.logs());
    again.stop();

    let mut command = std::process::Command::new(binary("host-server"));
    command.args(["--bind", "127.0.0.1:0", "--guest-memory-mib", "20", "--data-dir"]).arg(dir.path());
    command.arg("--component").arg(&hardened).arg("--trusted-signers").arg(dev_signers());
    // Were the memo to wave it through, the host would start serving: give it a bounded time to refuse.
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "the host did not refuse the component:\n{stderr}");
    assert!(stderr.contains("refused at the self-test step"), "{stderr}");
    assert!(!stderr.contains("these bytes passed before"), "{stderr}");
}

/// A shared `--cache-dir` holds native code the host runs: one that other users may write (or
/// whose key they may read) is refused, rather than trusted.
#[test]
fn a_cache_directory_open_to_other_users_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("shared-cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let start = |cache: &std::path::Path| {
        let mut command = std::process::Command::new(binary("host-server"));
        command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(dir.path().join("data"));
        command.arg("--component").arg(loom_e2e::component()).arg("--trusted-signers").arg(dev_signers());
        command.arg("--cache-dir").arg(cache).env_remove("LOOM_AUTH_CACHE_DIR");
        loom_e2e::run(command, None)
    };
    let refused = start(&cache);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("is open to other users (mode 777)"), "{}", refused.stderr);
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(cache.join("cache-key"), [7u8; 32]).unwrap();
    std::fs::set_permissions(cache.join("cache-key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = start(&cache);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("its cache key"), "{}", refused.stderr);
}
