//! The guest's sandbox: what a component instance may touch, and how much and how long.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
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

/// Per-instance state: an empty WASI context, the resource limits, and what
/// the guest printed.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    output: GuestOutput,
}

impl GuestState {
    /// What the guest wrote to stdout and stderr during this call (at most
    /// [`OUTPUT_LIMIT`] bytes), and how many more bytes it wrote and were dropped.
    pub fn output(&self) -> (Vec<u8>, usize) {
        let captured = self.output.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (captured.kept.clone(), captured.dropped)
    }
}

/// Bytes of a call's stdout and stderr kept for the host log; the rest is counted and dropped.
pub const OUTPUT_LIMIT: usize = 4096;

/// The guest's stdout and stderr: a bounded buffer per call. Writing never
/// fails or blocks, so printing can neither trap the guest nor hold the host.
#[derive(Clone, Default)]
struct GuestOutput(Arc<Mutex<Captured>>);

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: usize,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.3 guests ask for this; a sink keeps them as contained.
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut captured = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = OUTPUT_LIMIT.saturating_sub(captured.kept.len()).min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..room]);
        captured.dropped = captured.dropped.saturating_add(bytes.len() - room);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Instances that may exist at once: calls in flight on the async workers (token
/// calls), on the hashing threads and in a reload. A call that finds the pool
/// exhausted fails alone with a `503`.
const MAX_INSTANCES: u32 = 128;

/// Without `PAGEMAP_SCAN`: bytes at the start of a recycled memory reset in place (all of them,
/// written or not) rather than given back to the kernel, so the pages every call touches do
/// not fault on the next instance.
const KEEP_RESIDENT: usize = 512 << 10;

/// With `PAGEMAP_SCAN`: at most this many bytes of the pages a call wrote are reset in place
/// and stay resident; the rest are given back to the kernel. Every slot in use keeps up to
/// this much, so it is bounded by memory rather than set to a whole hash's 19 MiB: on 2 cores
/// under the bench's login load, 8 MiB added 23 MiB to the host's peak RSS (the whole guest
/// memory added 55 MiB, past the 150 MiB target) and took an argon2 hash from 33.8 to 30.7 ms
/// (the whole memory: 25.3 ms).
const WRITTEN_KEEP_RESIDENT: usize = 8 << 20;

/// Bytes at the top of a recycled async stack (where host and guest native
/// frames run) reset in place rather than given back to the kernel.
const STACK_KEEP_RESIDENT: usize = 64 << 10;

/// An engine for async calls (so WASI's host functions, such as printing or
/// sleeping, are awaited rather than blocking a tokio worker) whose guest code
/// is interrupted by epoch deadlines, with a thread that advances the epoch for
/// as long as the engine lives. Time spent in host calls is bounded by the
/// caller's timeout ([`super::calls`]).
///
/// Instances come from a pooling allocator: slots are reserved once and reset
/// between uses, which makes the per-call fresh instance cheap (see
/// `bench/RESULTS.md` for instantiation against reuse).
pub fn engine(limits: &Limits) -> wasmtime::Result<Engine> {
    let reset = if PoolingAllocationConfig::is_pagemap_scan_available() {
        tracing::info!("guest memory is reset by the pages each call wrote (PAGEMAP_SCAN)");
        Reset::WrittenPages
    } else {
        tracing::info!(
            "guest memory is reset by its first {} KiB (no PAGEMAP_SCAN: Linux 6.7 or later has it)",
            KEEP_RESIDENT >> 10
        );
        Reset::Prefix
    };
    let engine = Engine::new(&config(limits, reset))?;
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

/// How a recycled instance slot's memory is put back to its initial contents.
#[derive(Clone, Copy)]
enum Reset {
    /// With Linux's `PAGEMAP_SCAN` (6.7 and later): the pages a call wrote, found by the
    /// kernel, are reset in place, up to [`WRITTEN_KEEP_RESIDENT`], so they do not fault on
    /// the next use; pages never written are not touched. An argon2 hash writes its 19 MiB
    /// every call: faulting them all in again cost a quarter of its time.
    WrittenPages,
    /// Elsewhere: the first [`KEEP_RESIDENT`] bytes in place, the rest given back.
    Prefix,
}

fn config(limits: &Limits, reset: Reset) -> Config {
    let (keep_resident, pagemap) = match reset {
        Reset::WrittenPages => (WRITTEN_KEEP_RESIDENT.min(limits.memory_bytes), Enabled::Yes),
        Reset::Prefix => (KEEP_RESIDENT, Enabled::No),
    };
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 8)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 4)
        .max_memory_size(limits.memory_bytes)
        .total_stacks(MAX_INSTANCES)
        .async_stack_keep_resident(STACK_KEEP_RESIDENT)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(pagemap);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_wide_arithmetic(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// A store whose WASI context grants no files, no network, no environment and
/// no arguments (only clocks and randomness, which WASI provides by default,
/// and a bounded stdout and stderr the host logs), capped at
/// `limits.memory_bytes` and trapped after `deadline` of guest code.
pub fn new_store(engine: &Engine, limits: &Limits, deadline: Duration) -> Store<GuestState> {
    let output = GuestOutput::default();
    let wasi = WasiCtx::builder()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .stdout(output.clone())
        .stderr(output.clone())
        .build();
    let store_limits =
        StoreLimitsBuilder::new().memory_size(limits.memory_bytes).instances(16).trap_on_grow_failure(true).build();
    let state = GuestState { wasi, table: ResourceTable::new(), limits: store_limits, output };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limits);
    let ticks = deadline.as_millis().div_ceil(EPOCH_TICK.as_millis()).max(1);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store
}
