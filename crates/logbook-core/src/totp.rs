//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1, 6 digits, 30-second
//! steps, accepting the codes of one step before and after to absorb clock drift, as
//! authenticator apps expect. Also the base32 text and `otpauth://` URI that enroll a secret.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::OffsetDateTime;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Bytes of a new secret: 160 bits, the size RFC 4226 recommends for HMAC-SHA-1.
pub const SECRET_BYTES: usize = 20;

/// The HOTP value for `counter` (RFC 4226, section 5.3), reduced to `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let truncated = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    truncated % 10u32.pow(digits)
}

fn step_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(STEP_SECONDS)
}

/// The 6-digit code for the step holding `at`, zero-padded.
pub fn code_at(secret: &[u8], at: OffsetDateTime) -> String {
    format!("{:06}", hotp(secret, step_of(at) as u64, DIGITS))
}

/// Whether `presented` (spaces allowed) is the code of the current step or of one step before or
/// after it. The comparison does not stop at the first differing digit.
pub fn verify(secret: &[u8], presented: &str, at: OffsetDateTime) -> bool {
    let digits: String = presented
        .chars()
        .filter(|character| !character.is_whitespace())
        .collect();
    if digits.len() != DIGITS as usize || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return false;
    }
    let step = step_of(at);
    let mut matched = false;
    for candidate in [step - 1, step, step + 1] {
        let expected = format!("{:06}", hotp(secret, candidate as u64, DIGITS));
        let difference = expected
            .bytes()
            .zip(digits.bytes())
            .fold(0u8, |accumulated, (left, right)| {
                accumulated | (left ^ right)
            });
        matched |= difference == 0;
    }
    matched
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding: how authenticator apps take a secret typed by hand.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for &byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        bit_count += 8;
        while bit_count >= 5 {
            bit_count -= 5;
            text.push(BASE32_ALPHABET[((bits >> bit_count) & 31) as usize] as char);
        }
    }
    if bit_count > 0 {
        text.push(BASE32_ALPHABET[((bits << (5 - bit_count)) & 31) as usize] as char);
    }
    text
}

/// Decodes base32 (case-insensitive, spaces and padding ignored); `None` on any other character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::with_capacity(text.len() * 5 / 8);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for character in text
        .chars()
        .filter(|character| !character.is_whitespace() && *character != '=')
    {
        let upper = character.to_ascii_uppercase() as u8;
        let value = BASE32_ALPHABET.iter().position(|&letter| letter == upper)? as u32;
        bits = (bits << 5) | value;
        bit_count += 5;
        if bit_count >= 8 {
            bit_count -= 8;
            bytes.push(((bits >> bit_count) & 0xff) as u8);
        }
    }
    Some(bytes)
}

/// The `otpauth://totp/...` URI an authenticator app enrolls from. `issuer` and `label` are
/// percent-encoded.
pub fn provisioning_uri(secret: &[u8], issuer: &str, label: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        percent_encode(issuer),
        percent_encode(label),
        base32_encode(secret),
        percent_encode(issuer)
    )
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 seed of RFC 6238, appendix B.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn at(unix_seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap()
    }

    #[test]
    fn codes_match_the_rfc_6238_sha1_test_vectors() {
        // RFC 6238 lists 8-digit values; the 6-digit code is their last six digits.
        let vectors = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time, eight_digits) in vectors {
            assert_eq!(
                hotp(RFC_SECRET, (time / 30) as u64, 8),
                eight_digits,
                "at {time}"
            );
            assert_eq!(
                code_at(RFC_SECRET, at(time)),
                format!("{:06}", eight_digits % 1_000_000)
            );
        }
    }

    #[test]
    fn hotp_matches_the_rfc_4226_test_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(RFC_SECRET, counter as u64, 6), value);
        }
    }

    #[test]
    fn one_step_of_drift_is_accepted_and_two_are_not() {
        let now = at(1_700_000_000);
        let code = code_at(RFC_SECRET, now);
        assert!(verify(RFC_SECRET, &code, now));
        assert!(verify(RFC_SECRET, &code, now + time::Duration::seconds(30)));
        assert!(verify(RFC_SECRET, &code, now - time::Duration::seconds(30)));
        assert!(!verify(
            RFC_SECRET,
            &code,
            now + time::Duration::seconds(90)
        ));
        assert!(!verify(RFC_SECRET, "12345", now));
        assert!(!verify(RFC_SECRET, "abcdef", now));
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        let secret: Vec<u8> = (0..20).collect();
        assert_eq!(base32_decode(&base32_encode(&secret)).unwrap(), secret);
        assert_eq!(base32_decode("not base32!"), None);
    }

    #[test]
    fn the_provisioning_uri_names_issuer_account_and_secret() {
        let uri = provisioning_uri(b"foobar", "Logbook acme", "alice@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Logbook%20acme:alice@example.com?secret=MZXW6YTBOI&issuer=Logbook%20acme&algorithm=SHA1&digits=6&period=30"
        );
    }
}
