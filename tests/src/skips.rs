//! Tests that could not run on this machine (no PostgreSQL, no Python venv, no Chromium),
//! said where a person sees them: the test harness captures a passing test's output, so each
//! is also written to [`FILE`] beside the binaries, and `with-postgres` (which `just test`
//! runs the suites under) prints the list after the suites end.

use std::io::Write;
use std::path::Path;

/// The list, one `test: reason` line each, in `target/<profile>/`.
pub const FILE: &str = "tests-that-did-not-run.txt";

/// Records that the running test did not run, and why (`what` is missing).
pub fn did_not_run(what: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("!!! {what}: this test did NOT run !!!");
    let path = crate::bin_dir().join(FILE);
    let line = format!("{test}: {what}\n");
    // Appends of one short line are atomic: tests running in parallel do not mix lines.
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        let _ = file.write_all(line.as_bytes());
    }
}

/// Empties the list in `dir` (before the suites run).
pub fn clear(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
}

/// The list's lines in `dir`, grouped by reason: `(reason, tests)`.
pub fn read(dir: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(dir.join(FILE)).unwrap_or_default();
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (test, reason) in text.lines().filter_map(|line| line.rsplit_once(": ")) {
        match grouped.iter_mut().find(|(r, _)| r == reason) {
            Some((_, tests)) => tests.push(test.to_owned()),
            None => grouped.push((reason.to_owned(), vec![test.to_owned()])),
        }
    }
    grouped
}
