//! memcached's request tokenizer and its number parsers (`safe_strto*`).
//!
//! Requests split on single spaces only (tabs stay inside tokens), runs of
//! spaces are skipped, and at most 23 tokens are split off: the rest of a
//! long line stays in [`Tokens::rest`], which is how multi-gets continue.

use crate::storage::cnum::scan;
pub use crate::storage::cnum::strtoull;

/// memcached's MAX_TOKENS (24, including its terminal token).
pub const MAX_TOKENS: usize = 24;
/// Longest key memcached accepts.
pub const KEY_MAX_LENGTH: usize = 250;

#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    toks: [&'a [u8]; MAX_TOKENS - 1],
    len: usize,
    /// Unsplit remainder after the 23rd token, if any.
    pub rest: &'a [u8],
}

impl<'a> Tokens<'a> {
    pub fn new(line: &'a [u8]) -> Tokens<'a> {
        let mut t = Tokens {
            toks: [&[]; MAX_TOKENS - 1],
            len: 0,
            rest: &[],
        };
        let mut start = 0;
        let mut i = 0;
        while i < line.len() {
            if line[i] == b' ' {
                if start != i {
                    t.toks[t.len] = &line[start..i];
                    t.len += 1;
                    if t.len == MAX_TOKENS - 1 {
                        t.rest = &line[i + 1..];
                        return t;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        if start != i {
            t.toks[t.len] = &line[start..];
            t.len += 1;
        }
        t
    }

    /// memcached's `ntokens`: the tokens plus its terminal one.
    pub fn ntokens(&self) -> usize {
        self.len + 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> &'a [u8] {
        if i < self.len { self.toks[i] } else { &[] }
    }

    /// The tokens from `first` on, continuing through the unsplit rest of
    /// a long line (tokenized again 23 tokens at a time, as memcached
    /// walks a multi-get).
    pub fn keys_from(&self, first: usize) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut cur = *self;
        let mut i = first;
        std::iter::from_fn(move || {
            while i >= cur.len() {
                if cur.rest.is_empty() {
                    return None;
                }
                cur = Tokens::new(cur.rest);
                i = 0;
            }
            i += 1;
            Some(cur.get(i - 1))
        })
    }

    /// Whether the last token is `noreply` (memcached's `set_noreply_maybe`).
    pub fn noreply(&self) -> bool {
        self.len > 0 && self.toks[self.len - 1] == b"noreply"
    }
}

/// `safe_strtoul` into a 32-bit value: parsed as unsigned long, then
/// truncated to 32 bits as memcached's cast does.
pub fn strtoul(s: &[u8]) -> Option<u32> {
    strtoull(s).map(|v| v as u32)
}

/// `safe_strtol` as memcached 1.6.18 has it: a signed long (64-bit), then
/// cut to the 32-bit int it is stored in. So 4294967296 reads as 0 and
/// 2147483648 as a negative number.
pub fn strtol(s: &[u8]) -> Option<i32> {
    let (negative, v, _) = scan(s)?;
    let v = v?;
    let signed: i64 = if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        (v as i64).wrapping_neg()
    } else {
        i64::try_from(v).ok()?
    };
    Some(signed as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_memcached() {
        let t = Tokens::new(b"set  k 0 0 1 noreply");
        assert_eq!(t.len(), 6);
        assert_eq!(t.ntokens(), 7);
        assert_eq!(t.get(1), b"k");
        assert!(t.noreply());
        assert!(Tokens::new(b"").is_empty());
        assert_eq!(Tokens::new(b"a\tb").get(0), b"a\tb");
    }

    #[test]
    fn long_lines_keep_a_rest() {
        let line: Vec<u8> = (0..30)
            .map(|i| format!("k{i} "))
            .collect::<String>()
            .into_bytes();
        let t = Tokens::new(&line);
        assert_eq!(t.len(), 23);
        assert!(t.rest.starts_with(b"k23 "));
    }

    #[test]
    fn keys_continue_past_23_tokens() {
        let line: Vec<u8> = (0..60)
            .map(|i| format!("k{i} "))
            .collect::<String>()
            .into_bytes();
        let t = Tokens::new(&line);
        let keys: Vec<&[u8]> = t.keys_from(1).collect();
        assert_eq!(keys.len(), 59);
        assert_eq!(keys[0], b"k1");
        assert_eq!(keys[58], b"k59");
    }

    #[test]
    fn numbers() {
        assert_eq!(strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(strtoull(b"18446744073709551616"), None);
        assert_eq!(strtoull(b"-1"), None);
        assert_eq!(strtoull(b"-0"), Some(0));
        assert_eq!(strtoull(b"+5"), Some(5));
        assert_eq!(strtoull(b"12a"), None);
        assert_eq!(strtoull(b""), None);
        assert_eq!(strtoul(b"4294967296"), Some(0));
        assert_eq!(strtol(b"-1"), Some(-1));
        assert_eq!(strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(strtol(b"4294967296"), Some(0));
        assert_eq!(strtol(b"9223372036854775808"), None);
        assert_eq!(strtol(b"-2147483648"), Some(i32::MIN));
        assert_eq!(strtol(b" 7"), Some(7));
        assert_eq!(strtol(b"7\t"), Some(7));
    }
}
