//! The guest's sandbox: what a component instance may touch, and how much and how long.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
};
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

/// Instances that may exist at once. Calls are synchronous, so this bounds the
/// threads calling at once (async workers, hashing threads, a reload), with room.
const MAX_INSTANCES: u32 = 128;

/// Bytes at the start of a recycled memory reset in place rather than given back
/// to the kernel: no page faults on the next instance for the pages every call touches.
const KEEP_RESIDENT: usize = 512 << 10;

/// An engine whose calls can be interrupted by epoch deadlines, with a thread
/// that advances the epoch for as long as the engine lives.
///
/// Instances come from a pooling allocator: slots are reserved once and reset
/// between uses, which makes the per-call fresh instance cheap (see
/// `bench/RESULTS.md` for instantiation against reuse).
pub fn engine(limits: &Limits) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 8)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 4)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
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

/// Lowers the calling thread's scheduling priority to the lowest (nice 19), once per thread.
///
/// Hashing threads saturate the cores by design; at the lowest priority the
/// scheduler still gives them every idle cycle, but lets the async workers in
/// first, so cheap requests are not kept waiting behind logins (bench: the
/// `/users/me/` p99 under saturated logins went from 10.7× idle to 1×, at nice
/// 10 it was 4–5×). The price: when cheap requests alone saturate the cores,
/// logins slow down first.
pub fn lower_thread_priority() {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            // SAFETY: plain syscalls on the calling thread; on Linux, PRIO_PROCESS
            // with a thread id applies to that thread only.
            let result = unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 19)
            };
            if result != 0 {
                tracing::debug!("could not lower a hashing thread's priority");
            }
        }
    });
}
