//! One-time codes as an authenticator app computes them (RFC 6238: HMAC-SHA1, 6 digits,
//! 30-second steps), written apart from the component's code so that a test checks the
//! component against a second implementation.

use hmac::{Hmac, Mac};

/// The code for the base32 `secret` (as the enrolment shows it) at `unix_seconds`.
pub fn code_at(secret: &str, unix_seconds: u64) -> String {
    let key = secret_bytes(secret);
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(&(unix_seconds / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let value = u32::from_be_bytes([digest[offset], digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:06}", (value & 0x7fff_ffff) % 1_000_000)
}

/// The code now.
pub fn code_now(secret: &str) -> String {
    code_at(secret, now())
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs()
}

/// The secret's bytes from its base32 (RFC 4648, upper case, no padding needed).
pub fn secret_bytes(text: &str) -> Vec<u8> {
    let (mut bits, mut count, mut out) = (0u64, 0u32, Vec::new());
    for c in text.trim_end_matches('=').chars() {
        let value = match c {
            'A'..='Z' => c as u64 - 'A' as u64,
            '2'..='7' => c as u64 - '2' as u64 + 26,
            other => panic!("{other:?} is not base32"),
        };
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc_6238_vectors() {
        // "12345678901234567890" in base32; Appendix B's 8-digit values, last six digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(super::code_at(secret, 59), "287082");
        assert_eq!(super::code_at(secret, 1_111_111_109), "081804");
        assert_eq!(super::code_at(secret, 2_000_000_000), "279037");
    }
}
