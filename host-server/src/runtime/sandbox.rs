//! The guest's sandbox: what a component instance may touch, and how much and how long.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits on every guest call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Linear memory one instance may grow to. Argon2 at the OWASP cost needs 19 MiB.
    pub memory_bytes: usize,
    /// Longest a password hash or check may run before it is stopped.
    pub hash_deadline: Duration,
    /// Longest a token issue or check may run before it is stopped.
    pub token_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            hash_deadline: Duration::from_secs(5),
            token_deadline: Duration::from_millis(250),
        }
    }
}

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

/// An engine whose calls can be interrupted by epoch deadlines, with a thread
/// that advances the epoch for as long as the engine lives.
pub fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let ticking = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            // Ends once the engine is dropped.
            while let Some(engine) = ticking.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| wasmtime::Error::msg(format!("cannot start the epoch thread: {e}")))?;
    Ok(engine)
}

/// A store whose WASI context grants no files, no network, no environment and
/// no arguments (only clocks and randomness, which WASI provides by default),
/// capped at `limits.memory_bytes` and stopped after `deadline`.
pub fn new_store(engine: &Engine, limits: &Limits, deadline: Duration) -> Store<GuestState> {
    let wasi = WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
    let store_limits =
        StoreLimitsBuilder::new().memory_size(limits.memory_bytes).instances(16).trap_on_grow_failure(true).build();
    let mut store = Store::new(engine, GuestState { wasi, table: ResourceTable::new(), limits: store_limits });
    store.limiter(|state| &mut state.limits);
    let ticks = deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store
}
