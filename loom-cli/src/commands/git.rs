//! Whether a file that receives a token would reach git: inside a work tree and tracked, or
//! not ignored (so `git add -A` takes it). Asked after every save of a token, at login and on
//! renewal, with the fix named.

use std::path::Path;
use std::process::{Command, Stdio};

/// The warning for `path`, which now holds a token, when git would carry it off; `None`
/// outside a work tree, for an ignored file, or when there is no git.
pub fn exposure(path: &Path) -> Option<String> {
    let (dir, name) = (path.parent()?, path.file_name()?);
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .arg(name)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
    };
    let shown = path.display();
    let fix = "add it to .gitignore, or keep the login in a file outside the repository with --config or LOOM_CONFIG";
    // `ls-files --error-unmatch` succeeds for a tracked file only (and fails outside a work tree).
    if git(&["ls-files", "--error-unmatch", "--"]).is_some_and(|status| status.success()) {
        return Some(format!("{shown} is tracked by git and holds your login: {fix} (and `git rm --cached` it)"));
    }
    // `check-ignore` answers 0 for an ignored file, 1 for one that is not, 128 outside a work tree.
    match git(&["check-ignore", "-q", "--"]).and_then(|status| status.code()) {
        Some(1) => Some(format!(
            "{shown} holds your login and sits in a git work tree that does not ignore it (`git add -A` would \
             commit it): {fix}"
        )),
        _ => None,
    }
}
