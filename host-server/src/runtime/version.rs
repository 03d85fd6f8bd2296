//! Which `loom:auth` versions this host speaks, and which one a component exports.

use std::sync::LazyLock;

use wasmtime::Engine;
use wasmtime::component::{Component, types::ComponentItem};

use super::WIT_PACKAGE;

/// The `loom:auth` version this host was built against, read from `wit/`.
pub fn host_wit_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let wit = include_str!("../../../wit/auth.wit");
        let declared = wit.lines().find_map(|l| l.trim().strip_prefix("package loom:auth@")?.strip_suffix(';'));
        declared.expect("wit/auth.wit declares `package loom:auth@<version>;`").to_owned()
    });
    &VERSION
}

/// Whether a component exporting `theirs` can serve a host built for `ours`
/// (semver: same major; for 0.x, same minor).
pub(super) fn compatible(theirs: &str, ours: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split('.');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(theirs), parts(ours)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

/// The version of the `loom:auth` package a component exports, from its type.
pub(super) fn exported_version(engine: &Engine, component: &Component) -> Option<String> {
    component.component_type().exports(engine).find_map(|(name, item)| {
        let version = name.strip_prefix(WIT_PACKAGE)?.strip_prefix("/tokens@")?;
        matches!(item.ty, ComponentItem::ComponentInstance(_)).then(|| version.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn a_host_speaks_its_own_minor_version_only_before_1_0() {
        assert!(compatible("0.2.0", "0.2.0"));
        assert!(compatible("0.2.0", "0.2.1"), "a component of before second factors still serves");
        assert!(compatible("0.2.3", "0.2.0"), "a patch release");
        assert!(!compatible("0.1.0", "0.2.0"), "components from before keys and kids are refused");
        assert!(!compatible("0.3.0", "0.2.0"));
        assert!(!compatible("1.0.0", "0.2.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("garbage", "0.2.0"));
    }
}
