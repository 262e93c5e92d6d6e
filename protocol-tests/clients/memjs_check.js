// Real-client checks with memjs (npm package `memjs`), a Node.js client that
// speaks only the binary protocol, unmodified.
//
//     NODE_PATH=DEPS/node_modules node memjs_check.js HOST:PORT
//
// DEPS is the npm prefix that scripts/clients.sh --install fills. Prints one
// line per check: `PASS name` or `FAIL name: reason`; exits 0 when every
// check ran. Run by scripts/clients.sh. Flushes the server.
//
// memjs 1.3.2 quirks that the checks respect (they are the client's, and
// the same against memcached): prepend() sends the append opcode; append()
// to a missing key rejects (it maps only "not found" to false, and the
// server answers "not stored"); decrement() needs an options object.
'use strict';

const memjs = require('memjs');

const addr = process.argv[2];
if (!addr || !addr.includes(':')) {
  console.error('usage: memjs_check.js HOST:PORT');
  process.exit(2);
}

const logged = [];
const client = () => memjs.Client.create(addr, {
  timeout: 5, retries: 0, logger: { log: (...a) => logged.push(a.join(' ')) },
});

class CheckError extends Error {}

function short(v) {
  let s;
  if (Buffer.isBuffer(v)) {
    s = v.length > 40 ? `<Buffer ${v.length} bytes>` : `<Buffer "${v.toString('latin1')}">`;
  } else {
    s = JSON.stringify(v);
  }
  return s === undefined ? String(v) : s.length > 120 ? s.slice(0, 120) + '...' : s;
}

function eq(got, want, what) {
  const same = Buffer.isBuffer(want)
    ? Buffer.isBuffer(got) && got.equals(want)
    : JSON.stringify(got) === JSON.stringify(want);
  if (!same) throw new CheckError(`${what}: got ${short(got)}, want ${short(want)}`);
}

async function rejects(promise, pattern, what) {
  try {
    const got = await promise;
    throw new CheckError(`${what}: resolved ${short(got)}, want a rejection`);
  } catch (e) {
    if (e instanceof CheckError) throw e;
    if (!pattern.test(e.message)) throw new CheckError(`${what}: rejected with "${e.message}"`);
  }
}

const value = async (c, key) => (await c.get(key)).value;

const checks = [];
const check = (name, fn) => checks.push([name, fn]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const P = 'mjs:';

check('memjs.set_get', async (c) => {
  eq(await c.flush(), { [addr]: true }, 'flush');
  eq(await c.get(P + 'missing'), { value: null, flags: null }, 'get of a missing key');
  for (const size of [0, 1, 300, 65536, 500000]) {
    const v = Buffer.alloc(size);
    for (let i = 0; i < size; i++) v[i] = (i * 7 + (i >> 8)) & 255;
    if (size >= 300) Buffer.from('\r\nEND\r\nVALUE x 0 1\r\n').copy(v, 256);
    eq(await c.set(P + 'bin' + size, v, {}), true, `set of ${size} bytes`);
    eq(await value(c, P + 'bin' + size), v, `get of ${size} bytes`);
  }
  eq(await c.set(P + 'str', 'héllo wörld', { expires: 300 }), true, 'set of a string');
  eq((await value(c, P + 'str')).toString('utf8'), 'héllo wörld', 'get of a string');
  const k = P + 'k'.repeat(250 - P.length);
  eq(await c.set(k, 'long key', {}), true, 'set with a 250-byte key');
  eq((await value(c, k)).toString(), 'long key', 'get with a 250-byte key');
  const got = await c.get(P + 'str');
  eq(got.flags, Buffer.alloc(4), 'flags (memjs stores 0)');
});

check('memjs.add_replace_append', async (c) => {
  await c.delete(P + 'arap');
  eq(await c.replace(P + 'arap', 'x', {}), false, 'replace of a missing key');
  await rejects(c.append(P + 'arap', 'x'), /not stored/i, 'append to a missing key');
  eq(await c.add(P + 'arap', 'mid', {}), true, 'add of a new key');
  eq(await c.add(P + 'arap', 'other', {}), false, 'add of an existing key');
  eq(await c.append(P + 'arap', '\r\nend'), true, 'append');
  eq((await value(c, P + 'arap')).toString(), 'mid\r\nend', 'value after append');
  eq(await c.replace(P + 'arap', 'new', {}), true, 'replace of an existing key');
  eq((await value(c, P + 'arap')).toString(), 'new', 'value after replace');
});

check('memjs.delete', async (c) => {
  eq(await c.set(P + 'del', 'x', {}), true, 'set');
  eq(await c.delete(P + 'del'), true, 'delete of a stored key');
  eq(await c.get(P + 'del'), { value: null, flags: null }, 'get after delete');
  eq(await c.delete(P + 'del'), false, 'delete of a missing key');
});

check('memjs.increment_decrement', async (c) => {
  await c.delete(P + 'n');
  eq(await c.increment(P + 'n', 5, { initial: 10 }), { success: true, value: 10 },
    'increment of a missing key creates it with the initial value');
  eq(await c.increment(P + 'n', 5, {}), { success: true, value: 15 }, 'increment 5');
  eq(await c.decrement(P + 'n', 3, {}), { success: true, value: 12 }, 'decrement 3');
  eq(await c.decrement(P + 'n', 100, {}), { success: true, value: 0 }, 'decrement stops at 0');
  // a decrement rewrites the number in place, padded to its old length
  eq((await value(c, P + 'n')).toString(), '0 ', 'value after the decrements');
  eq(await c.set(P + 'n', '100', {}), true, 'set "100"');
  eq(await c.decrement(P + 'n', 1, {}), { success: true, value: 99 }, 'decrement to fewer digits');
  eq((await value(c, P + 'n')).toString(), '99 ', 'value after decrement');
  eq(await c.set(P + 'n', '4294967295', {}), true, 'set 2^32-1');
  eq(await c.increment(P + 'n', 1, {}), { success: true, value: 1 << 8 },
    'increment past 2^32 (memjs reads the 64-bit value as (high << 8) + low)');
  eq((await value(c, P + 'n')).toString(), '4294967296', 'value after increment past 2^32');
  eq(await c.set(P + 'n', 'abc', {}), true, 'set a non-numeric value');
  await rejects(c.increment(P + 'n', 1, {}), /non-numeric/i, 'increment of a non-numeric value');
  eq((await value(c, P + 'n')).toString(), 'abc', 'value after the refused increment');
});

check('memjs.touch_expiry', async (c) => {
  eq(await c.set(P + 'e', 'short', { expires: 1 }), true, 'set with a 1 s expiry');
  eq(await c.set(P + 't', 'kept', { expires: 1 }), true, 'set with a 1 s expiry');
  eq(await c.set(P + 't2', 'shortened', { expires: 100 }), true, 'set with a 100 s expiry');
  eq(await c.touch(P + 't', 100), true, 'touch to 100 s');
  eq(await c.touch(P + 't2', 1), true, 'touch to 1 s');
  eq(await c.touch(P + 'touch-missing', 100), false, 'touch of a missing key');
  await sleep(2200);
  eq(await c.get(P + 'e'), { value: null, flags: null }, 'get after the expiry');
  eq((await value(c, P + 't')).toString(), 'kept', 'get of the key touched to 100 s');
  eq(await c.get(P + 't2'), { value: null, flags: null }, 'get of the key touched to 1 s');
});

check('memjs.flush', async (c) => {
  eq(await c.set(P + 'f1', 'x', {}), true, 'set');
  eq(await c.set(P + 'f2', 'y', {}), true, 'set');
  eq(await c.flush(), { [addr]: true }, 'flush');
  eq(await c.get(P + 'f1'), { value: null, flags: null }, 'get after flush');
  eq(await c.add(P + 'f2', 'z', {}), true, 'add after flush');
});

check('memjs.stats', async (c) => {
  const stats = () => new Promise((resolve, reject) => {
    c.stats((err, server, s) => (err ? reject(err) : resolve([server, s])));
  });
  const [server, before] = await stats();
  eq(server, addr, 'stats server');
  for (const k of ['pid', 'uptime', 'version', 'curr_items', 'get_hits', 'get_misses', 'cmd_get',
    'cmd_set', 'limit_maxbytes', 'threads']) {
    if (!(k in before)) throw new CheckError(`stats has no ${k}: ${short(Object.keys(before))}`);
  }
  eq(before.version, '1.6.18', 'stats version');
  for (let i = 0; i < 3; i++) eq(await c.set(P + 's' + i, 'v', {}), true, 'set');
  await c.get(P + 's0');
  await c.get(P + 'nope');
  const [, after] = await stats();
  const delta = (k) => Number(after[k]) - Number(before[k]);
  eq([delta('cmd_set'), delta('get_hits'), delta('get_misses'), delta('total_items')], [3, 1, 1, 3],
    'changes of cmd_set, get_hits, get_misses, total_items after 3 sets, a hit and a miss');
  const settings = await new Promise((resolve, reject) => {
    c.statsWithKey('settings', (err, server, s) => (err ? reject(err) : resolve(s)));
  });
  eq(settings.tcpport, addr.split(':').pop(), 'stats settings tcpport');
});

(async () => {
  for (const [name, fn] of checks) {
    const c = client();
    try {
      await fn(c);
      console.log(`PASS ${name}`);
    } catch (e) {
      console.log(`FAIL ${name}: ${String(e && e.message || e).replace(/\s+/g, ' ')}`);
      console.error(e);
    } finally {
      c.close();
    }
  }
  if (logged.length) console.error('memjs logged:\n  ' + logged.join('\n  '));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
