//! Which `loom:auth` and `loom:policy` versions this host speaks, and which one a component
//! exports.

use std::sync::LazyLock;

use wasmtime::Engine;
use wasmtime::component::{Component, types::ComponentItem};

use super::WIT_PACKAGE;

/// The `loom:auth` version this host was built against, read from `wit/`.
pub fn host_wit_version() -> &'static str {
    static VERSION: LazyLock<String> =
        LazyLock::new(|| declared(include_str!("../../../wit/auth.wit"), "package loom:auth@"));
    &VERSION
}

/// The `loom:policy` version this host was built against, read from `wit/policy/`.
pub fn host_policy_version() -> &'static str {
    static VERSION: LazyLock<String> =
        LazyLock::new(|| declared(include_str!("../../../wit/policy/policy.wit"), "package loom:policy@"));
    &VERSION
}

fn declared(wit: &str, prefix: &str) -> String {
    let version = wit.lines().find_map(|l| l.trim().strip_prefix(prefix)?.strip_suffix(';'));
    version.unwrap_or_else(|| panic!("the WIT declares `{prefix}<version>;`")).to_owned()
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
    exported_interface_version(engine, component, &format!("{WIT_PACKAGE}/tokens@"))
}

/// The version of the exported interface named `prefix` (`package/interface@`), from the
/// component's type.
pub(super) fn exported_interface_version(engine: &Engine, component: &Component, prefix: &str) -> Option<String> {
    component.component_type().exports(engine).find_map(|(name, item)| {
        let version = name.strip_prefix(prefix)?;
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
