//! Deterministic, self-checking values.
//!
//! A value is fully determined by (key, version, length), so any value read
//! back can be verified without remembering what was written:
//!
//! * `len >= 16`: bytes `0..8` hold the version (little endian, upper 32 bits
//!   are [`MAGIC`]); the rest is a word pattern seeded by hash(key), version
//!   and length.
//! * `len < 16`: the whole value is the pattern seeded by hash(key) and length
//!   (version is implicitly 0).
//!
//! Because the length is part of the seed, truncated or spliced values fail;
//! because the key hash is, a value returned for the wrong key fails; and
//! because every word depends on its position, shifted data fails.

pub const MAGIC: u64 = 0x4d43_5242 << 32; // "MCRB"
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// FNV-1a 64 of the key bytes.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64 finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed(kh: u64, version: u64, len: usize) -> u64 {
    mix(kh ^ mix(version ^ GOLDEN) ^ (len as u64).wrapping_mul(GOLDEN))
}

#[inline]
fn word(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_add(1).wrapping_mul(GOLDEN)
}

fn fill_pattern(out: &mut Vec<u8>, seed: u64, len: usize) {
    let words = len / 8;
    out.reserve(len);
    for i in 0..words {
        out.extend_from_slice(&word(seed, i).to_le_bytes());
    }
    let rest = len % 8;
    if rest > 0 {
        out.extend_from_slice(&word(seed, words).to_le_bytes()[..rest]);
    }
}

fn check_pattern(data: &[u8], seed: u64) -> bool {
    let mut diff = 0u64;
    let chunks = data.chunks_exact(8);
    let rem = chunks.remainder();
    let words = data.len() / 8;
    for (i, c) in chunks.enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        diff |= u64::from_le_bytes(w) ^ word(seed, i);
    }
    if diff != 0 {
        return false;
    }
    rem.is_empty() || rem == &word(seed, words).to_le_bytes()[..rem.len()]
}

/// Append the value for (key hash, version, len) to `out`.
pub fn fill_value(out: &mut Vec<u8>, kh: u64, version: u64, len: usize) {
    if len < 16 {
        fill_pattern(out, seed(kh, 0, len), len);
    } else {
        let version = MAGIC | (version & 0xffff_ffff);
        out.extend_from_slice(&version.to_le_bytes());
        fill_pattern(out, seed(kh, version, len), len - 8);
    }
}

/// Why a value failed verification (None = good).
pub fn check_value(data: &[u8], kh: u64, vmin: usize, vmax: usize) -> Option<&'static str> {
    let len = data.len();
    if len < vmin || len > vmax {
        return Some("length out of range");
    }
    if len < 16 {
        return (!check_pattern(data, seed(kh, 0, len))).then_some("bad short value");
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&data[..8]);
    let version = u64::from_le_bytes(v);
    if version & !0xffff_ffff != MAGIC {
        return Some("bad version header");
    }
    (!check_pattern(&data[8..], seed(kh, version, len))).then_some("bad value pattern")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_detection() {
        for len in [0usize, 1, 7, 8, 15, 16, 17, 100, 1024, 100 * 1024 + 3] {
            let kh = key_hash(b"key:42");
            let mut v = Vec::new();
            fill_value(&mut v, kh, 7, len);
            assert_eq!(v.len(), len);
            assert_eq!(check_value(&v, kh, 0, usize::MAX), None);
            if len > 0 {
                assert!(check_value(&v, key_hash(b"key:43"), 0, usize::MAX).is_some());
                let mut bad = v.clone();
                bad[len - 1] ^= 1;
                assert!(check_value(&bad, kh, 0, usize::MAX).is_some());
                if len > 1 {
                    assert!(check_value(&v[..len - 1], kh, 0, usize::MAX).is_some());
                }
            }
        }
    }
}
