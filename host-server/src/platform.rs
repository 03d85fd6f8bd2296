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

/// This process's effective user id (who owns the files it makes).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
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

/// Makes `listener` ignore new connection attempts (a SYN without an ACK) while the
/// handshakes it has already answered still complete: what a shutdown needs to empty the
/// accept queue without a race. The ignored clients send their SYN again a second later
/// and, the listener closed by then, are refused: a failure they can safely retry.
/// Only Linux has socket filters; elsewhere this returns `false` and changes nothing.
#[cfg(target_os = "linux")]
pub fn ignore_new_connections(listener: &std::net::TcpListener) -> bool {
    use socket2::{SockFilter, SockRef};
    // Classic BPF, run by TCP with the packet starting at the TCP header (byte 13: flags).
    const LOAD_BYTE: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const JUMP_IF_EQUAL: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const SYN: u32 = 0x02;
    const ACK: u32 = 0x10;
    let program = [
        SockFilter::new(LOAD_BYTE, 0, 0, 13),
        SockFilter::new(AND, 0, 0, SYN | ACK),
        SockFilter::new(JUMP_IF_EQUAL, 0, 1, SYN),
        SockFilter::new(RETURN, 0, 0, 0),        // a new connection: dropped
        SockFilter::new(RETURN, 0, 0, u32::MAX), // anything else: kept whole
    ];
    SockRef::from(listener).attach_filter(&program).is_ok()
}

#[cfg(not(target_os = "linux"))]
pub fn ignore_new_connections(_listener: &std::net::TcpListener) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_listener_that_ignores_new_connections_still_serves_the_ones_it_has() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut early = TcpStream::connect(address).unwrap();
        assert!(ignore_new_connections(&listener));

        let late = TcpStream::connect_timeout(&address, Duration::from_millis(300));
        assert!(late.is_err(), "a connection made after the filter was accepted");
        let (mut accepted, _) = listener.accept().unwrap();
        early.write_all(b"ping").unwrap();
        let mut received = [0; 4];
        accepted.read_exact(&mut received).unwrap();
        assert_eq!(&received, b"ping", "data on an established connection still flows");
    }
}
