//! Eviction under a small memory limit (-m 2, the smallest memcached accepts
//! with the default 1 MiB item size limit). Behaviour is compared, not
//! exact counts: memcrab's items may be smaller than memcached's.

use protocol_tests::*;

const N: usize = 8000;
const VALUE: usize = 1000;

fn fill(c: &mut Conn, from: usize, to: usize) -> Reply {
    let value = vec![b'e'; VALUE];
    let mut conv = Vec::new();
    for i in from..to {
        conv.extend(format!("set key{i} 0 0 {VALUE} noreply\r\n").as_bytes());
        conv.extend(&value);
        conv.extend(b"\r\n");
    }
    c.send(&conv)
}

#[test]
fn evicts_and_keeps_serving() {
    let p = pair!("-m", "2");
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let mut errors = Vec::new();
        // in batches, so that the LRU maintainer gets to run in between
        for batch in 0..8 {
            let rep = fill(&mut c, batch * N / 8, (batch + 1) * N / 8);
            errors.extend(rep.bytes);
        }
        let recent: Vec<String> = (N - 20..N).map(|i| format!("key{i}")).collect();
        let get = c.send(format!("get {}\r\n", recent.join(" ")).as_bytes());
        let first = c.send(b"get key0 key1 key2\r\n");
        let stats = c.stats("");
        let after = c.send(b"set fresh 0 0 5\r\nhello\r\nget fresh\r\n");
        (errors, get, first, stats, after)
    });
    for (side, (errors, get, first, stats, after)) in [("memcached", &r), ("memcrab", &s)] {
        assert!(
            errors.is_empty(),
            "{side}: errors while filling: {}",
            escape(errors)
        );
        assert!(!get.closed && !get.timed_out, "{side}: {}", get.render());
        // the 20 most recent keys are all there
        assert_eq!(
            get.text().matches("VALUE ").count(),
            20,
            "{side}: recent keys missing: {}",
            get.render()
        );
        // the oldest are gone
        assert_eq!(first.bytes, b"END\r\n", "{side}");
        let evictions = stat_u64(stats, "evictions");
        let items = stat_u64(stats, "curr_items");
        assert!(evictions > 0, "{side}: no evictions");
        assert!((items as usize) < N, "{side}: {items} items in 2 MB");
        assert_eq!(stat_u64(stats, "total_items"), N as u64, "{side}");
        assert_eq!(stat_u64(stats, "limit_maxbytes"), 2 * 1024 * 1024, "{side}");
        assert_eq!(
            after.bytes, b"STORED\r\nVALUE fresh 0 5\r\nhello\r\nEND\r\n",
            "{side}"
        );
    }
    let (rs, ss) = (&r.3, &s.3);
    assert_stats_eq(
        "stats names after eviction",
        &rs.iter().map(|(n, _)| (n.clone(), String::new())).collect(),
        &ss.iter().map(|(n, _)| (n.clone(), String::new())).collect(),
        &[],
    );
}

/// -M: no evictions; a full cache refuses stores with an error.
#[test]
fn disabled_evictions_report_out_of_memory() {
    let p = pair!("-m", "2", "-M");
    let (r, s) = p.run(|srv| {
        let mut c = srv.connect();
        let value = vec![b'm'; VALUE];
        let mut conv = Vec::new();
        for i in 0..N {
            conv.extend(set_cmd(&format!("key{i}"), 0, 0, &value));
        }
        let rep = c.send(&conv);
        let get = c.send(b"get key0 key1\r\n");
        (rep, get, c.stats(""))
    });
    for (side, (rep, get, stats)) in [("memcached", &r), ("memcrab", &s)] {
        let text = rep.text();
        let stored = text.matches("STORED\r\n").count();
        let oom = text
            .matches("SERVER_ERROR out of memory storing object\r\n")
            .count();
        assert!(stored > 0, "{side}");
        assert!(oom > 0, "{side}: no out-of-memory errors");
        assert_eq!(stored + oom, N, "{side}: {}", truncate(&text));
        // nothing was evicted: the first keys are still there
        assert_eq!(get.text().matches("VALUE ").count(), 2, "{side}");
        assert_eq!(stat_u64(stats, "evictions"), 0, "{side}");
    }
}

fn truncate(s: &str) -> &str {
    &s[..s.len().min(500)]
}
