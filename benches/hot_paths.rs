//! Micro-benchmarks of the request path without the network: the text
//! protocol (tokenize, dispatch, build replies) over the real store.
//!
//!     cargo bench --bench hot_paths
//!
//! They measure memcrab's own code only; comparisons with memcached come
//! from `scripts/bench.sh`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memcrab::config::Config;
use memcrab::protocol::text::{self, Session, tokens::Tokens};
use memcrab::server::Shared;
use memcrab::storage::Mode;

const KEYS: usize = 100_000;

fn key(i: usize) -> String {
    format!("key:{i:08}")
}

/// A store filled with `KEYS` 100-byte values.
fn filled() -> Shared {
    let shared = Shared::new(Config::default(), Vec::new());
    for i in 0..KEYS {
        shared
            .store
            .store(Mode::Set, key(i).as_bytes(), 0, 0, &[b'v'; 100]);
    }
    // Ten digits: incrementing it stays in place for a long while.
    shared
        .store
        .store(Mode::Set, b"counter", 0, 0, b"1000000000");
    shared
}

fn bench(c: &mut Criterion) {
    let shared = filled();
    let stats = &shared.threads[0];
    let mut out = Vec::with_capacity(1 << 20);

    c.bench_function("tokenize a set line", |b| {
        b.iter(|| Tokens::new(black_box(b"set key:00012345 0 0 100 noreply")).len())
    });

    let mut run = |name: &str, input: Vec<u8>, requests: u64| {
        let mut group = c.benchmark_group("text protocol");
        group.throughput(Throughput::Elements(requests));
        group.bench_function(name, |b| {
            let mut sess = Session::default();
            b.iter(|| {
                out.clear();
                let n = text::process(&shared, stats, &mut sess, black_box(&input), &mut out);
                assert_eq!(n, input.len());
            })
        });
        group.finish();
    };

    run("get hit", format!("get {}\r\n", key(4242)).into_bytes(), 1);
    run("get miss", b"get no:such:key\r\n".to_vec(), 1);
    let mut set = format!("set {} 0 0 100\r\n", key(777)).into_bytes();
    set.extend([b'v'; 100]);
    set.extend(b"\r\n");
    run("set 100 B", set, 1);
    let pipeline: String = (0..16)
        .map(|i| format!("get {}\r\n", key(i * 997)))
        .collect();
    run("16 pipelined gets", pipeline.into_bytes(), 16);
    let multi = (0..10).map(|i| key(i * 7919)).collect::<Vec<_>>().join(" ");
    run("get of 10 keys", format!("get {multi}\r\n").into_bytes(), 1);
    run("incr", b"incr counter 1\r\n".to_vec(), 1);
}

criterion_group!(benches, bench);
criterion_main!(benches);
