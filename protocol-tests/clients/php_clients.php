<?php
// Real-client checks with PHP's memcached extension (class Memcached, on
// libmemcached) and memcache extension (class Memcache), unmodified, as Debian
// packages them (php-memcached, php-memcache), and their session handlers: a
// session written by one PHP process (php_session_write.php) is read by
// another (php_session_read.php).
//
//   php php_clients.php HOST PORT
//
// The checks php-memcached.binary_protocol, php-memcached.binary_session and
// php-memcache.binary_protocol need the binary protocol (scripts/clients.sh
// lists them as expected failures while the server does not speak it).
// Prints one line per check: `PASS name` or `FAIL name: reason`. Exits 0 when
// every check ran, whatever their results. Run by scripts/clients.sh.

if ($argc != 3) {
    fwrite(STDERR, "usage: php php_clients.php HOST PORT\n");
    exit(2);
}
$HOST = $argv[1];
$PORT = (int)$argv[2];
const P = 'php:';

class CheckFailed extends Exception {}

function show($v) {
    $s = is_string($v) ? (strlen($v) > 60 ? 'string(' . strlen($v) . ') ' . json_encode(substr($v, 0, 40)) . '...' : json_encode($v))
        : var_export($v, true);
    return preg_replace('/\s+/', ' ', (string)$s);
}

function eq($got, $want, $what) {
    if ($got !== $want) {
        throw new CheckFailed("$what: got " . show($got) . ', want ' . show($want));
    }
}

function check($name, callable $body) {
    try {
        $body();
        echo "PASS $name\n";
    } catch (Throwable $e) {
        echo "FAIL $name: " . preg_replace('/\s+/', ' ', get_class($e) . ': ' . $e->getMessage()) . "\n";
        fwrite(STDERR, "$name: $e\n");
    }
    flush();
}

function blob($n) {
    $head = implode('', array_map('chr', range(0, 255))) . "\r\nEND\r\nVALUE x 0 1\r\n\0";
    return substr($head . random_bytes(max(1, $n - strlen($head))), 0, $n);
}

function memcached_client($binary = false) {
    global $HOST, $PORT;
    $m = new Memcached();
    $m->setOption(Memcached::OPT_BINARY_PROTOCOL, $binary);
    $m->setOption(Memcached::OPT_CONNECT_TIMEOUT, 2000);     // ms
    $m->setOption(Memcached::OPT_POLL_TIMEOUT, 2000);        // ms
    $m->setOption(Memcached::OPT_RECV_TIMEOUT, 2000000);     // us
    $m->setOption(Memcached::OPT_SEND_TIMEOUT, 2000000);     // us
    $m->addServer($HOST, $PORT);
    return $m;
}

function memcache_client() {
    global $HOST, $PORT;
    $m = new Memcache();
    if (!$m->addServer($HOST, $PORT, false, 1, 2)) {
        throw new CheckFailed("addServer failed");
    }
    return $m;
}

function rc(Memcached $m, $want, $what) {
    eq($m->getResultCode(), $want, "$what: result code (" . $m->getResultMessage() . ")");
}

// ------------------------------------------------------------- php-memcached

check('php-memcached.binary_safe', function () {
    $m = memcached_client();
    $m->setOption(Memcached::OPT_COMPRESSION, false);
    foreach ([0, 1, 300, 65536, 500000] as $n) {
        $v = blob($n);
        eq($m->set(P . "bin$n", $v), true, "set of $n bytes");
        eq($m->get(P . "bin$n"), $v, "get of $n bytes");
    }
    $m->setOption(Memcached::OPT_COMPRESSION, true);
    $v = str_repeat("compressible \r\n", 10000);
    eq($m->set(P . 'z', $v), true, 'compressed set');
    eq($m->get(P . 'z'), $v, 'compressed get');
    $arr = ['a' => [1, 2.5, null, "x\0y"], 'b' => true];
    eq($m->set(P . 'arr', $arr), true, 'set of an array (serialized)');
    eq($m->get(P . 'arr'), $arr, 'get of an array');
    eq($m->set(P . 'int', 42), true, 'set of an int');
    eq($m->get(P . 'int'), 42, 'get of an int');
    $k = P . str_repeat('k', 250 - strlen(P));
    eq($m->set($k, 'long key'), true, 'set with a 250-byte key');
    eq($m->get($k), 'long key', 'get with a 250-byte key');
});

check('php-memcached.multi_get', function () {
    $m = memcached_client();
    $items = [];
    for ($i = 0; $i < 40; $i++) {
        $items[P . "m$i"] = str_repeat("v$i ", $i + 1);
    }
    eq($m->setMulti($items), true, 'setMulti');
    $keys = array_merge(array_keys($items), [P . 'missing']);
    $got = $m->getMulti($keys);
    ksort($got);
    ksort($items);
    eq($got, $items, 'getMulti');
    eq($m->getMulti([P . 'missing']), [], 'getMulti of a missing key');
    $ext = $m->getMulti([P . 'm1', P . 'm2'], Memcached::GET_EXTENDED);
    eq(isset($ext[P . 'm1']['cas']) && $ext[P . 'm1']['cas'] > 0, true, 'getMulti GET_EXTENDED has a cas');
    eq($m->deleteMulti([P . 'm1', P . 'm2'])[P . 'm1'], true, 'deleteMulti');
    eq($m->get(P . 'm1'), false, 'get after deleteMulti');
    rc($m, Memcached::RES_NOTFOUND, 'get after deleteMulti');
});

check('php-memcached.cas', function () {
    $a = memcached_client();
    $b = memcached_client();
    eq($a->set(P . 'cas', 'v1'), true, 'set');
    $r = $a->get(P . 'cas', null, Memcached::GET_EXTENDED);
    eq($r['value'], 'v1', 'get GET_EXTENDED value');
    eq($b->set(P . 'cas', 'v2'), true, 'set by a second client');
    eq($a->cas($r['cas'], P . 'cas', 'v3'), false, 'cas with a stale token');
    rc($a, Memcached::RES_DATA_EXISTS, 'cas with a stale token');
    eq($a->get(P . 'cas'), 'v2', 'value after the refused cas');
    $r2 = $a->get(P . 'cas', null, Memcached::GET_EXTENDED);
    eq($r2['cas'] !== $r['cas'], true, 'the cas token changed after a set');
    eq($a->cas($r2['cas'], P . 'cas', 'v3'), true, 'cas with the current token');
    eq($b->get(P . 'cas'), 'v3', 'value after the cas');
    $a->delete(P . 'cas-missing');
    eq($a->cas($r2['cas'], P . 'cas-missing', 'x'), false, 'cas on a missing key');
    rc($a, Memcached::RES_NOTFOUND, 'cas on a missing key');
});

check('php-memcached.incr_decr', function () {
    $m = memcached_client();
    $m->setOption(Memcached::OPT_COMPRESSION, false);
    eq($m->set(P . 'n', '10'), true, 'set');
    eq($m->increment(P . 'n', 5), 15, 'increment 5');
    eq($m->decrement(P . 'n', 3), 12, 'decrement 3');
    eq($m->decrement(P . 'n', 100), 0, 'decrement below zero');
    eq($m->set(P . 'n', '100'), true, 'set 100');
    eq($m->decrement(P . 'n'), 99, 'decrement to fewer digits');
    eq($m->get(P . 'n'), '99 ', 'value after decrement keeps its length');
    $m->delete(P . 'nmissing');
    eq($m->increment(P . 'nmissing'), false, 'increment of a missing key');
    rc($m, Memcached::RES_NOTFOUND, 'increment of a missing key');
});

check('php-memcached.add_replace_append_prepend_delete', function () {
    $m = memcached_client();
    $m->setOption(Memcached::OPT_COMPRESSION, false);
    $m->delete(P . 'a');
    eq($m->replace(P . 'a', 'x'), false, 'replace of a missing key');
    rc($m, Memcached::RES_NOTSTORED, 'replace of a missing key');
    eq($m->add(P . 'a', 'mid'), true, 'add');
    eq($m->add(P . 'a', 'other'), false, 'add of an existing key');
    rc($m, Memcached::RES_NOTSTORED, 'add of an existing key');
    eq($m->append(P . 'a', "\r\nend"), true, 'append');
    eq($m->prepend(P . 'a', "start\0"), true, 'prepend');
    eq($m->get(P . 'a'), "start\0mid\r\nend", 'value after append/prepend');
    eq($m->delete(P . 'a'), true, 'delete');
    eq($m->delete(P . 'a'), false, 'delete of a missing key');
    rc($m, Memcached::RES_NOTFOUND, 'delete of a missing key');
});

check('php-memcached.flush', function () {
    $m = memcached_client();
    eq($m->set(P . 'f', 'x'), true, 'set');
    eq($m->flush(), true, 'flush');
    eq($m->get(P . 'f'), false, 'get after flush');
    rc($m, Memcached::RES_NOTFOUND, 'get after flush');
});

check('php-memcached.stats_version', function () {
    global $HOST, $PORT;
    $m = memcached_client();
    $m->set(P . 's', 'x');
    $all = $m->getStats();
    $s = $all["$HOST:$PORT"] ?? null;
    eq(is_array($s), true, "stats of $HOST:$PORT");
    foreach (['pid', 'uptime', 'version', 'curr_items', 'get_hits', 'cmd_set', 'limit_maxbytes'] as $k) {
        eq(array_key_exists($k, $s), true, "stats has $k");
    }
    eq($s['curr_items'] >= 1, true, 'curr_items >= 1');
    $settings = $m->getStats('settings')["$HOST:$PORT"];
    eq((string)$settings['tcpport'], (string)$PORT, 'stats settings tcpport');
    eq($m->getVersion()["$HOST:$PORT"], $s['version'], 'getVersion vs stats version');
});

// Needs the binary protocol.
check('php-memcached.binary_protocol', function () {
    $m = memcached_client(true);
    $v = blob(3000);
    eq($m->set(P . 'bp', $v), true, 'binary set');
    eq($m->get(P . 'bp'), $v, 'binary get');
    eq($m->set(P . 'bpn', 5), true, 'binary set of a number');
    eq($m->increment(P . 'bpn', 2), 7, 'binary increment');
    eq($m->delete(P . 'bpn'), true, 'binary delete');
    eq(is_array($m->getStats()), true, 'binary stats');
});

// -------------------------------------------------------------- php-memcache

check('php-memcache.binary_safe', function () {
    $m = memcache_client();
    foreach ([1, 300, 65536, 500000] as $n) {
        $v = blob($n);
        eq($m->set(P . "mbin$n", $v, 0, 0), true, "set of $n bytes");
        eq($m->get(P . "mbin$n"), $v, "get of $n bytes");
    }
    $v = str_repeat("compressible \r\n", 10000);
    eq($m->set(P . 'mz', $v, MEMCACHE_COMPRESSED, 0), true, 'compressed set');
    eq($m->get(P . 'mz'), $v, 'compressed get');
    $arr = ['x' => [1, "a\0b"], 'y' => 2.5];
    eq($m->set(P . 'marr', $arr), true, 'set of an array');
    eq($m->get(P . 'marr'), $arr, 'get of an array');
    $v = blob(300);
    eq($m->set(P . 'mflags', $v, 0, 0), true, 'set with flags 0');
    $flags = null;
    eq($m->get(P . 'mflags', $flags), $v, 'get with flags');
    eq($flags, 0, 'flags of a plain string');
});

check('php-memcache.multi_get', function () {
    $m = memcache_client();
    $items = [];
    for ($i = 0; $i < 30; $i++) {
        $items[P . "mm$i"] = "value $i";
        eq($m->set(P . "mm$i", "value $i"), true, "set $i");
    }
    $got = $m->get(array_merge(array_keys($items), [P . 'mm-missing']));
    ksort($got);
    ksort($items);
    eq($got, $items, 'multi-key get');
});

check('php-memcache.cas', function () {
    $a = memcache_client();
    $b = memcache_client();
    eq($a->set(P . 'mcas', 'v1'), true, 'set');
    $flags = null;
    $cas = null;
    eq($a->get(P . 'mcas', $flags, $cas), 'v1', 'get with cas');
    eq(is_int($cas) && $cas > 0, true, 'cas token');
    eq($b->set(P . 'mcas', 'v2'), true, 'set by a second client');
    eq($a->cas(P . 'mcas', 'v3', 0, 0, $cas), false, 'cas with a stale token');
    eq($a->get(P . 'mcas'), 'v2', 'value after the refused cas');
    $cas2 = null;
    $a->get(P . 'mcas', $flags, $cas2);
    eq($a->cas(P . 'mcas', 'v3', 0, 0, $cas2), true, 'cas with the current token');
    eq($b->get(P . 'mcas'), 'v3', 'value after the cas');
});

check('php-memcache.incr_decr_add_replace_delete', function () {
    $m = memcache_client();
    eq($m->set(P . 'mn', '10'), true, 'set');
    eq($m->increment(P . 'mn', 5), 15, 'increment');
    eq($m->decrement(P . 'mn', 20), 0, 'decrement below zero');
    $m->delete(P . 'mn-missing');
    eq($m->increment(P . 'mn-missing', 1), false, 'increment of a missing key');
    eq($m->replace(P . 'mn-missing', 'x'), false, 'replace of a missing key');
    eq($m->add(P . 'mn-missing', 'x'), true, 'add');
    eq($m->add(P . 'mn-missing', 'y'), false, 'add of an existing key');
    eq($m->append(P . 'mn-missing', '-end'), true, 'append');
    eq($m->prepend(P . 'mn-missing', 'start-'), true, 'prepend');
    eq($m->get(P . 'mn-missing'), 'start-x-end', 'value after append/prepend');
    eq($m->delete(P . 'mn-missing'), true, 'delete');
    eq($m->delete(P . 'mn-missing'), false, 'delete of a missing key');
    eq($m->get(P . 'mn-missing'), false, 'get after delete');
});

check('php-memcache.flush_stats_version', function () {
    global $HOST, $PORT;
    $m = memcache_client();
    eq($m->set(P . 'mf', 'x'), true, 'set');
    $s = $m->getStats();
    foreach (['pid', 'uptime', 'version', 'curr_items', 'get_hits', 'cmd_set'] as $k) {
        eq(array_key_exists($k, $s), true, "stats has $k");
    }
    eq($m->getVersion(), $s['version'], 'getVersion vs stats version');
    $ext = $m->getExtendedStats();
    eq(isset($ext["$HOST:$PORT"]['pid']), true, 'getExtendedStats has pid');
    $items = $m->getStats('items');
    eq(is_array($items) && isset($items['items']), true, 'stats items');
    $slabs = $m->getStats('slabs');
    eq(is_array($slabs) && isset($slabs['active_slabs']), true, 'stats slabs');
    eq($m->flush(), true, 'flush');
    eq($m->get(P . 'mf'), false, 'get after flush');
});

// Needs the binary protocol.
check('php-memcache.binary_protocol', function () {
    ini_set('memcache.protocol', 'binary');
    try {
        $m = memcache_client();
        $v = blob(3000);
        eq($m->set(P . 'mbp', $v, 0, 0), true, 'binary set');
        eq($m->get(P . 'mbp'), $v, 'binary get');
        eq($m->increment(P . 'mbp-missing', 1), false, 'binary increment of a missing key');
        eq($m->delete(P . 'mbp'), true, 'binary delete');
    } finally {
        ini_set('memcache.protocol', 'ascii');
    }
});

// --------------------------------------------- expiry and touch (one sleep)

$exp = [];
try {
    $md = memcached_client();
    $mc = memcache_client();
    $exp['setup'] = [
        $md->set(P . 'e1', 'short', 2), $md->set(P . 'e2', 'kept', 2), $md->touch(P . 'e2', 100),
        $md->touch(P . 'e-missing', 100), $md->getResultCode(), $md->get(P . 'e1'),
        $mc->set(P . 'e3', 'short', 0, 2), $mc->set(P . 'e4', 'kept', 0, 100), $mc->get(P . 'e3'),
    ];
    sleep(3);
    usleep(200000);
} catch (Throwable $e) {
    $exp['error'] = $e;
}

check('php-memcached.touch_expiry', function () use (&$exp, &$md) {
    if (isset($exp['error'])) {
        throw $exp['error'];
    }
    [$s1, $s2, $t, $tm, $tmrc, $g1] = $exp['setup'];
    eq([$s1, $s2], [true, true], 'sets with ttl 2');
    eq($t, true, 'touch to ttl 100');
    eq([$tm, $tmrc], [false, Memcached::RES_NOTFOUND], 'touch of a missing key');
    eq($g1, 'short', 'get before the ttl ran out');
    eq($md->get(P . 'e1'), false, 'get after the ttl ran out');
    eq($md->get(P . 'e2'), 'kept', 'get of the touched key');
});

check('php-memcache.expiry', function () use (&$exp, &$mc) {
    if (isset($exp['error'])) {
        throw $exp['error'];
    }
    [, , , , , , $s3, $s4, $g3] = $exp['setup'];
    eq([$s3, $s4], [true, true], 'sets with ttl 2 and 100');
    eq($g3, 'short', 'get before the ttl ran out');
    eq($mc->get(P . 'e3'), false, 'get after the ttl ran out');
    eq($mc->get(P . 'e4'), 'kept', 'get of the key with ttl 100');
});

// ------------------------------------------------------------------ sessions

// Runs one PHP script in a new process with the given ini settings; returns
// [exit code, stdout, stderr].
function php_run($script, array $ini, array $args) {
    $cmd = [PHP_BINARY];
    foreach ($ini as $k => $v) {
        $cmd[] = '-d';
        $cmd[] = "$k=\"$v\"";
    }
    $cmd[] = __DIR__ . '/' . $script;
    foreach ($args as $a) {
        $cmd[] = $a;
    }
    $p = proc_open(array_merge(['timeout', '20'], $cmd), [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    fclose($pipes[1]);
    fclose($pipes[2]);
    $rc = proc_close($p);
    return [$rc, $out, $err];
}

// Writes a session in one process, reads and updates it in a second, checks
// the raw stored record with $raw, destroys it in a third process.
function err_tail($err) {
    $err = trim(preg_replace('/\s+/', ' ', $err));
    return strlen($err) > 160 ? '...' . substr($err, -160) : $err;
}

function session_round_trip(array $ini, callable $raw) {
    $id = bin2hex(random_bytes(16));
    $payload = base64_encode(random_bytes(24));
    [$rc, $out, $err] = php_run('php_session_write.php', $ini, [$id, $payload]);
    eq([$rc, trim($out)], [0, "written $id"], 'writer process (stderr: ' . err_tail($err) . ')');
    [$rc, $out, $err] = php_run('php_session_read.php', $ini, [$id, $payload, 'update']);
    eq([$rc, trim($out)], [0, "read $id"], 'reader process (stderr: ' . err_tail($err) . ')');
    $stored = $raw($id);
    eq(is_string($stored) && strpos($stored, $payload) !== false && strpos($stored, 'reads|i:1;') !== false,
        true, 'raw session record ' . show($stored));
    [$rc, $out, $err] = php_run('php_session_read.php', $ini, [$id, $payload, 'destroy']);
    eq([$rc, trim($out)], [0, "read $id"], 'destroying process (stderr: ' . err_tail($err) . ')');
    eq($raw($id), false, 'raw session record after session_destroy');
}

check('php-memcached.session_handler', function () {
    global $HOST, $PORT;
    session_round_trip([
        'session.save_handler' => 'memcached',
        'session.save_path' => "$HOST:$PORT",
        'memcached.sess_binary_protocol' => '0',
        'memcached.sess_prefix' => 'memc.sess.key.',
    ], function ($id) {
        $m = memcached_client();
        return $m->get("memc.sess.key.$id");
    });
});

check('php-memcache.session_handler', function () {
    global $HOST, $PORT;
    session_round_trip([
        'session.save_handler' => 'memcache',
        'session.save_path' => "tcp://$HOST:$PORT?timeout=2",
    ], function ($id) {
        $m = memcache_client();
        return $m->get($id);
    });
});

// Needs the binary protocol.
check('php-memcached.binary_session', function () {
    global $HOST, $PORT;
    session_round_trip([
        'session.save_handler' => 'memcached',
        'session.save_path' => "$HOST:$PORT",
        'memcached.sess_binary_protocol' => '1',
        'memcached.sess_prefix' => 'memc.sess.key.',
        // one lock retry: each operation the server leaves unanswered costs
        // libmemcached's 5 s poll timeout
        'memcached.sess_lock_retries' => '1',
    ], function ($id) {
        $m = memcached_client();
        return $m->get("memc.sess.key.$id");
    });
});

exit(0);
