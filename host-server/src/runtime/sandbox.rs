//! The guest's sandbox: what a component instance may touch and how much.

use wasmtime::component::ResourceTable;
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Linear memory one instance may grow to. Argon2 at the OWASP cost needs 19 MiB.
pub const MEMORY_LIMIT_BYTES: usize = 64 << 20;

/// Per-instance state: an empty WASI context and the resource limits.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

pub fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config
}

/// A store whose WASI context grants no files, no network, no environment and
/// no arguments: only clocks and randomness, which WASI provides by default.
pub fn new_store(engine: &Engine) -> Store<GuestState> {
    let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
    let limits = StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT_BYTES).instances(16).build();
    let mut store = Store::new(engine, GuestState { wasi, table: ResourceTable::new(), limits });
    store.limiter(|state| &mut state.limits);
    store
}
