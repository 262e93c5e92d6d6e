//! C's `strtoull`/`strtol` as memcached's `safe_strto*` use them: leading
//! white space, an optional sign, decimal digits, then the end or white
//! space. The protocol parses numbers in requests with them, the store
//! the numbers stored by `incr`/`decr`.

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// C's strtoull/strtoll front half: white space, sign, digits. Returns the
/// sign, the magnitude (None on overflow) and where the digits end.
pub fn scan(s: &[u8]) -> Option<(bool, Option<u64>, usize)> {
    let mut i = s.iter().take_while(|&&b| is_space(b)).count();
    let negative = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut v: Option<u64> = Some(0);
    for &b in &s[i..i + digits] {
        v = v
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add((b - b'0') as u64));
    }
    let end = i + digits;
    // memcached accepts the number if it ends the token or white space follows.
    if end < s.len() && !is_space(s[end]) {
        return None;
    }
    Some((negative, v, end))
}

/// `safe_strtoull`: unsigned 64-bit; "-1" and friends are rejected (an
/// out-of-range or negative value is not a number).
pub fn strtoull(s: &[u8]) -> Option<u64> {
    let (negative, v, _) = scan(s)?;
    let v = v?;
    if negative {
        let n = v.wrapping_neg();
        return if (n as i64) < 0 { None } else { Some(n) };
    }
    Some(v)
}
