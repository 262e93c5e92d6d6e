//! Slab class geometry, computed exactly as memcached 1.6's `slabs_init`.
//!
//! Operators read `stats slabs` and size their caches by it, so `chunk_size`
//! and `chunks_per_page` must match memcached's for the same `-n`, `-f` and
//! `-o slab_chunk_max`.

/// memcached's item header on 64-bit builds: the classes start from it + `-n`.
pub const MEMCACHED_ITEM_HEADER: usize = 48;
/// Slab pages are always 1 MiB in memcached 1.6, whatever `-I` says.
pub const PAGE_SIZE: usize = 1024 * 1024;
const CHUNK_ALIGN: usize = 8;
/// memcached's MAX_NUMBER_OF_SLAB_CLASSES is 64; class ids run 1..=63.
const MAX_CLASSES: usize = 63;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    /// Bytes per chunk.
    pub size: usize,
    /// Chunks carved from one page.
    pub perslab: usize,
}

/// The slab classes, indexed from 0 (memcached numbers them from 1).
#[derive(Clone, Debug)]
pub struct Classes {
    classes: Vec<Class>,
}

impl Classes {
    /// `chunk_size` is `-n`, `factor` is `-f`, `chunk_max` is `slab_chunk_max`.
    pub fn new(chunk_size: usize, factor: f64, chunk_max: usize) -> Classes {
        let mut classes = Vec::new();
        let mut size = (MEMCACHED_ITEM_HEADER + chunk_size) as u32;
        // memcached compares before aligning and multiplies in floating point,
        // truncating back to an unsigned int: do the same to get its numbers.
        while classes.len() < MAX_CLASSES - 1 {
            if f64::from(size) >= chunk_max as f64 / factor {
                break;
            }
            let aligned = (size as usize).next_multiple_of(CHUNK_ALIGN);
            classes.push(Class {
                size: aligned,
                perslab: PAGE_SIZE / aligned,
            });
            size = (aligned as f64 * factor) as u32;
        }
        classes.push(Class {
            size: chunk_max,
            perslab: PAGE_SIZE / chunk_max,
        });
        Classes { classes }
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    pub fn get(&self, id: usize) -> Class {
        self.classes[id]
    }

    pub fn iter(&self) -> impl Iterator<Item = Class> + '_ {
        self.classes.iter().copied()
    }

    /// The largest class: chained items are built from its chunks.
    pub fn largest(&self) -> usize {
        self.classes.len() - 1
    }

    /// The smallest class whose chunks hold `bytes`, if any does.
    pub fn for_size(&self, bytes: usize) -> Option<usize> {
        let i = self.classes.partition_point(|c| c.size < bytes);
        (i < self.classes.len()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(c: &Classes) -> Vec<usize> {
        c.iter().map(|c| c.size).collect()
    }

    #[test]
    fn defaults_match_memcached() {
        let c = Classes::new(48, 1.25, 512 * 1024);
        assert_eq!(c.len(), 39);
        assert_eq!(
            sizes(&c)[..13],
            [
                96, 120, 152, 192, 240, 304, 384, 480, 600, 752, 944, 1184, 1480
            ]
        );
        let per: Vec<usize> = c.iter().map(|c| c.perslab).collect();
        assert_eq!(per[..4], [10922, 8738, 6898, 5461]);
        assert_eq!(
            c.get(c.largest()),
            Class {
                size: 524288,
                perslab: 2
            }
        );
        // Classes observed on memcached 1.6.18 with values of 600000 and 3000000 bytes.
        assert_eq!(c.get(30).size, 82792);
        assert_eq!(
            c.get(37),
            Class {
                size: 394840,
                perslab: 2
            }
        );
    }

    #[test]
    fn one_megabyte_chunk_max() {
        let c = Classes::new(48, 1.25, 1024 * 1024);
        assert_eq!(c.len(), 42);
        assert_eq!(
            c.get(39),
            Class {
                size: 616944,
                perslab: 1
            }
        );
        assert_eq!(
            c.get(41),
            Class {
                size: 1048576,
                perslab: 1
            }
        );
    }

    #[test]
    fn growth_factor_two() {
        let c = Classes::new(48, 2.0, 512 * 1024);
        assert_eq!(
            sizes(&c),
            [
                96, 192, 384, 768, 1536, 3072, 6144, 12288, 24576, 49152, 98304, 196608, 524288
            ]
        );
    }

    #[test]
    fn size_lookup() {
        let c = Classes::new(48, 1.25, 512 * 1024);
        assert_eq!(c.for_size(1), Some(0));
        assert_eq!(c.for_size(96), Some(0));
        assert_eq!(c.for_size(97), Some(1));
        assert_eq!(c.for_size(524288), Some(38));
        assert_eq!(c.for_size(524289), None);
    }

    #[test]
    fn never_more_than_63_classes() {
        let c = Classes::new(1, 1.01, 512 * 1024);
        assert_eq!(c.len(), 63);
        assert_eq!(c.get(62).size, 512 * 1024);
    }
}
