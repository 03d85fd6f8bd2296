//! What differs between operating systems, in one place: everything else in
//! the host is portable (Linux and macOS).

/// Lowers the calling thread's scheduling priority to the lowest (nice 19), once per thread.
///
/// Hashing threads saturate the cores by design; at the lowest priority the
/// scheduler still gives them every idle cycle, but lets the async workers in
/// first, so cheap requests are not kept waiting behind logins (bench: the
/// `/users/me/` p99 under saturated logins went from 10.7× idle to 1×, at nice
/// 10 it was 4–5×). The price: when cheap requests alone saturate the cores,
/// logins slow down first. Only Linux can renice one thread; elsewhere this
/// does nothing.
pub fn lower_thread_priority() {
    thread_local!(static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    LOWERED.with(|lowered| {
        if !lowered.replace(true) && !renice_this_thread(19) {
            tracing::debug!("could not lower a hashing thread's priority");
        }
    });
}

#[cfg(target_os = "linux")]
fn renice_this_thread(nice: libc::c_int) -> bool {
    // SAFETY: plain syscalls on the calling thread; on Linux, PRIO_PROCESS
    // with a thread id applies to that thread only.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) == 0
    }
}

#[cfg(not(target_os = "linux"))]
fn renice_this_thread(_nice: i32) -> bool {
    false
}
