//! Base64 for meta commands' binary keys (`b` flag), decoded the lenient
//! way memcached 1.6.18 decodes them: bytes outside the alphabet are
//! skipped, the alphabet characters (padding included) must come in groups
//! of four, and the first group with padding ends the key.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 6-bit value of an alphabet byte (`=` is 0), or `None`.
fn value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Decodes `src`; `None` where memcached fails ("error decoding key"):
/// no alphabet byte, a count of them that is not a multiple of four, or a
/// group of more than two `=`.
pub fn decode(src: &[u8]) -> Option<Vec<u8>> {
    let count = src.iter().filter(|&&b| value(b).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let (mut block, mut n, mut pad) = ([0u8; 4], 0, 0);
    for &b in src {
        let Some(v) = value(b) else { continue };
        pad += usize::from(b == b'=');
        block[n] = v;
        n += 1;
        if n < 4 {
            continue;
        }
        out.extend_from_slice(&[
            block[0] << 2 | block[1] >> 4,
            block[1] << 4 | block[2] >> 2,
            block[2] << 6 | block[3],
        ]);
        n = 0;
        if pad > 0 {
            if pad > 2 {
                return None;
            }
            out.truncate(out.len() - pad);
            break;
        }
    }
    Some(out)
}

/// Standard base64 with padding, appended to `out`.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    for chunk in src.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let sextets = [
            b[0] >> 2,
            (b[0] & 3) << 4 | b[1] >> 4,
            (b[1] & 15) << 2 | b[2] >> 6,
            b[2] & 63,
        ];
        for (i, s) in sextets.iter().enumerate() {
            out.push(if i <= chunk.len() {
                ALPHABET[*s as usize]
            } else {
                b'='
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(src: &[u8]) -> String {
        let mut out = Vec::new();
        encode(src, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = enc(&data);
            assert_eq!(text.len(), data.len().div_ceil(3) * 4);
            if len > 0 {
                assert_eq!(decode(text.as_bytes()), Some(data));
            }
        }
        assert_eq!(enc(b"a"), "YQ==");
        assert_eq!(enc(b"ab"), "YWI=");
        assert_eq!(enc(b"abc"), "YWJj");
    }

    /// Cases checked against memcached 1.6.18 (`mg <key> b k` on a miss
    /// echoes the decoded key encoded again).
    #[test]
    fn decodes_as_memcached() {
        let d = |s: &str| decode(s.as_bytes()).map(|k| enc(&k));
        assert_eq!(d("Y!Q=="), Some("YQ==".into()));
        assert_eq!(d("YQ=x"), Some("YQA=".into()));
        assert_eq!(d("Y=Q="), Some("YA==".into()));
        assert_eq!(d("YQ==YWJj"), Some("YQ==".into()));
        assert_eq!(d("YW=j"), Some("YWA=".into()));
        assert_eq!(d("YQ=!="), Some("YQ==".into()));
        assert_eq!(d("+/+/"), Some("+/+/".into()));
        assert_eq!(d("AAAA"), Some("AAAA".into()));
        for bad in ["Y===", "====", "YQ", "!!!!", "YWJjZA=", "-_-_", "a", ""] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }
}
