#!/usr/bin/env node
// npm run bench [-- options]: nbdkit-ts against native nbdkit, side by side, on the same workloads.
//
// Each plugin (built-in file and memory, and the file-backed scripts in bench/plugins/ for Lua,
// Python and Tcl) is served by nbdkit-ts and by native nbdkit in turn, on a private Unix socket,
// and driven by nbdcopy and nbdinfo. Every workload runs once as a warm-up (discarded), then
// --runs times; the table shows medians. Run `node bench/run.mjs --help` for the options.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const PLUGINS = join(ROOT, 'bench', 'plugins');
const MiB = 1024 * 1024;
// libnbd's tools and Debian's nbdkit live in /usr/bin; put it first, as the tests do.
const ENV = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` };

const HELP = `usage: node bench/run.mjs [options]

  --runs N          measured runs per workload, after one warm-up (default 3)
  --size MiB        disk size for the bulk workloads (default 512)
  --small-size MiB  disk size for 4 KiB requests one at a time (default 64)
  --plugins LIST    comma-separated subset of: file,memory,lua,python,tcl,lua-ram,python-ram
  --workloads LIST  comma-separated subset of: read256k,read4k64,read4k1,write256k,startup,
                    read256k4,fio4x16
  --timeout S       limit for one workload run, in seconds (default 120)
  --cold            a fresh server for every run (default: one server per workload,
                    warmed up by the discarded first run)
  --no-native       measure nbdkit-ts only
  --json FILE       also write every measurement to FILE
  --svg FILE        also draw the ratios as a bar chart (SVG) in FILE

lua-ram and python-ram (the RAM disk examples) only run the workloads with several clients.
`;

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    size: { type: 'string', default: '512' },
    'small-size': { type: 'string', default: '64' },
    plugins: { type: 'string', default: 'file,memory,lua,python,tcl,lua-ram,python-ram' },
    workloads: { type: 'string', default: 'read256k,read4k64,read4k1,write256k,startup,read256k4,fio4x16' },
    timeout: { type: 'string', default: '120' },
    cold: { type: 'boolean', default: false },
    'no-native': { type: 'boolean', default: false },
    json: { type: 'string' },
    svg: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const RUNS = positive(opts.runs, '--runs');
const SIZE = positive(opts.size, '--size') * MiB;
const SMALL_SIZE = positive(opts['small-size'], '--small-size') * MiB;
const TIMEOUT_MS = positive(opts.timeout, '--timeout') * 1000;
const COLD = opts.cold;

function positive(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`bench: ${name} wants a positive integer, not '${text}'\n`);
    process.exit(2);
  }
  return n;
}

const EXAMPLES = join(ROOT, 'examples');

/**
 * The plugins compared. `args(disk, size)` are the plugin arguments serving a disk of that
 * file and size; `only` limits a plugin to some workloads (the RAM disk scripts keep their
 * disk in the interpreter, so they are measured where several clients share it).
 */
const PLUGIN_SETUPS = {
  file: { args: (disk) => ['file', disk] },
  memory: { args: (_disk, size) => ['memory', `${size}`], prefill: true },
  lua: { args: (disk) => ['lua', join(PLUGINS, 'file.lua'), `file=${disk}`] },
  python: { args: (disk) => ['python', join(PLUGINS, 'file.py'), `file=${disk}`] },
  tcl: { args: (disk) => ['tcl', join(PLUGINS, 'file.tcl'), `file=${disk}`] },
  'lua-ram': { args: (_disk, size) => ['lua', join(EXAMPLES, 'lua', 'ramdisk.lua'), `size=${size}`], only: ['fio4x16'] },
  'python-ram': { args: (_disk, size) => ['python', join(EXAMPLES, 'python', 'ramdisk.py'), `size=${size}`], only: ['fio4x16'] },
};

/** What each workload runs; `$uri` is the server's address. */
const WORKLOADS = {
  read256k: {
    title: 'read, 256 KiB requests',
    small: false,
    client: (uri) => ['nbdcopy', '--request-size=262144', uri, 'null:'],
  },
  read4k64: {
    title: 'read, 4 KiB requests, 64 in flight',
    small: false,
    client: (uri) => ['nbdcopy', '--request-size=4096', '--requests=64', uri, 'null:'],
  },
  read4k1: {
    title: 'read, 4 KiB requests, one at a time',
    small: true,
    client: (uri) => ['nbdcopy', '--request-size=4096', '--requests=1', '--connections=1', uri, 'null:'],
  },
  write256k: {
    title: 'write, 256 KiB requests',
    small: false,
    writes: true,
    client: (uri, source) => ['nbdcopy', '--request-size=262144', source, uri],
  },
  startup: { title: 'start to first answer (nbdinfo --size)', startup: true },
  read256k4: {
    title: 'read, 256 KiB requests, 4 connections',
    small: false,
    client: (uri) => ['nbdcopy', '--request-size=262144', '--connections=4', uri, 'null:'],
  },
  fio4x16: {
    title: 'random 4 KiB reads and writes, 4 clients x 16 in flight',
    small: true,
    writes: true,
    // A fixed amount of work (16 MiB per client, half of it writes), so that the time compares.
    client: (uri) => [
      'fio', '--name=bench', '--ioengine=nbd', `--uri=${uri}`, '--rw=randrw', '--bs=4k', '--iodepth=16',
      '--numjobs=4', '--io_size=16m', '--randrepeat=0', '--group_reporting', '--output=/dev/null',
    ],
  },
};

const plugins = pick(opts.plugins, PLUGIN_SETUPS, '--plugins');
const workloads = pick(opts.workloads, WORKLOADS, '--workloads');

/** Whether a plugin takes part in a workload. */
function runs(plugin, workloadName) {
  const only = PLUGIN_SETUPS[plugin].only;
  return only === undefined || only.includes(workloadName);
}

function pick(list, table, name) {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(n in table)) {
      process.stderr.write(`bench: ${name}: unknown '${n}' (known: ${Object.keys(table).join(', ')})\n`);
      process.exit(2);
    }
  }
  return names;
}

// ---------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function have(command, args = ['--version']) {
  const r = spawnSync(command, args, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  return r.status === 0 ? r.stdout.toString().trim().split('\n')[0] : undefined;
}

/** Run a command to its end (or its time limit); resolves with its status and duration. */
function runTimed(argv, timeoutMs) {
  return new Promise((resolvePromise) => {
    const start = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 4000) stderr += chunk.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ ok: false, seconds: 0, why: error.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const ok = code === 0 && !timedOut;
      const why = timedOut ? 'timeout' : `exit ${code ?? signal}: ${stderr.trim().split('\n').pop() ?? ''}`;
      resolvePromise({ ok, seconds, why });
    });
  });
}

/** Peak resident set size of a live process, in MiB (Linux /proc). */
function peakMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The command line of a server: native nbdkit or nbdkit-ts, same arguments. nbdkit-ts runs as
 * its users run it, by its #! line (which spares Node's start the NODE_EXTRA_CA_CERTS load).
 */
function serverArgv(impl, extra) {
  return impl === 'native' ? ['nbdkit', ...extra] : [CLI, ...extra];
}

/** True when something listens on the Unix socket (the probe connection is closed at once). */
function accepts(path) {
  return new Promise((resolvePromise) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolvePromise(true);
    });
    probe.once('error', () => resolvePromise(false));
  });
}

/** Start a server in the foreground on a fresh Unix socket; undefined (and why) if it does not come up. */
async function startServer(impl, pluginArgs, dir) {
  const socket = join(dir, `${impl}.sock`);
  rmSync(socket, { force: true });
  const argv = serverArgv(impl, ['-f', '-U', socket, ...pluginArgs]);
  const child = spawn(argv[0], argv.slice(1), { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  let exited = false;
  const exit = new Promise((r) => child.on('close', () => r((exited = true))));
  child.on('error', () => undefined);
  const deadline = Date.now() + 60_000;
  // The socket file appears at bind(), a moment before listen(): wait until a connection is taken.
  while (!(existsSync(socket) && (await accepts(socket)))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      await exit;
      return { error: stderr.trim().split('\n')[0] || 'did not start' };
    }
    await sleep(5);
  }
  return {
    uri: `nbd+unix:///?socket=${socket}`,
    peak: () => peakMiB(child.pid),
    stop: async () => {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
      rmSync(socket, { force: true });
    },
  };
}

/** A file of random bytes (so that no layer can shortcut zeroes), written in 8 MiB pieces. */
function makeDisk(path, size) {
  const fd = openSync(path, 'w');
  const piece = Buffer.allocUnsafe(Math.min(size, 8 * MiB));
  try {
    for (let done = 0; done < size; done += piece.length) writeSync(fd, randomFillSync(piece), 0, Math.min(piece.length, size - done));
  } finally {
    closeSync(fd);
  }
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

// ---------------------------------------------------------------------------------------------

/** The start-up workload: a server of its own per run, timed from spawn to exit. */
async function measureStartup(impl, plugin, files) {
  const pluginArgs = PLUGIN_SETUPS[plugin].args(files.big, SIZE);
  const run = await runTimed(
    serverArgv(impl, ['-U', '-', ...pluginArgs, '--run', 'nbdinfo --size "$uri" >/dev/null']),
    TIMEOUT_MS,
  );
  return run.ok ? { seconds: run.seconds } : { error: run.why };
}

/** A server for one workload, prefilled when the plugin needs it; `error` when it did not start. */
async function serveWorkload(impl, plugin, workloadName, files) {
  const setup = PLUGIN_SETUPS[plugin];
  const workload = WORKLOADS[workloadName];
  const size = workload.small ? SMALL_SIZE : SIZE;
  const source = workload.small ? files.small : files.big;
  // Writes go to a copy-free target of the same size; reads to the source itself.
  const disk = workload.writes ? files.target : source;
  const server = await startServer(impl, setup.args(disk, size), files.dir);
  if (server.error) return { error: server.error, fatal: true };
  if (setup.prefill && !workload.writes) {
    const fill = await runTimed(['nbdcopy', source, server.uri], TIMEOUT_MS);
    if (!fill.ok) {
      await server.stop();
      return { error: `prefill: ${fill.why}` };
    }
  }
  return { server, client: () => workload.client(server.uri, source) };
}

/** One timed client run against a served workload. */
async function timeClient(served) {
  const run = await runTimed(served.client(), TIMEOUT_MS);
  return run.ok ? { seconds: run.seconds } : { error: run.why };
}

/**
 * Runs 0..RUNS of one workload for each implementation, alternating who goes first so that
 * drift on a busy machine hits both alike; run 0 is the warm-up and is discarded. Warm (the
 * default): each implementation keeps one server for all runs, so the warm-up also pays its
 * one-time costs (V8 compiling nbdkit-ts's hot path, buffers first touched). Cold: every run
 * has a server of its own.
 */
async function measureWorkload(plugin, workloadName, impls, files, cell, broken) {
  const warm = {};
  /** Record the peak memory of a served workload, then stop its server. */
  const retire = async (impl, served) => {
    const peak = served.server.peak();
    if (peak !== undefined) cell[impl].peaks.push(peak);
    await served.server.stop();
  };
  /** One timed run of `impl`: { seconds }, or { error, fatal } */
  const runOnce = async (impl) => {
    if (WORKLOADS[workloadName].startup) return measureStartup(impl, plugin, files);
    const served = warm[impl] ?? (await serveWorkload(impl, plugin, workloadName, files));
    if (served.error) return served;
    if (!COLD) {
      warm[impl] = served;
      return timeClient(served);
    }
    try {
      return await timeClient(served);
    } finally {
      await retire(impl, served);
    }
  };
  try {
    for (let run = 0; run <= RUNS; run++) {
      const order = run % 2 ? [...impls].reverse() : impls;
      for (const impl of order) {
        const slot = cell[impl];
        if (broken[impl] || slot.error) continue;
        const m = await runOnce(impl);
        if (m.error) {
          slot.error = m.error;
          if (m.fatal) broken[impl] = m.error;
          process.stderr.write(`bench: ${plugin} ${workloadName} ${impl}: ${m.error}\n`);
        } else if (run > 0) {
          slot.times.push(m.seconds);
          slot.byRun[run] = m.seconds;
        }
      }
    }
  } finally {
    for (const [impl, served] of Object.entries(warm)) await retire(impl, served);
  }
}

async function main() {
  const missing = ['nbdcopy', 'nbdinfo'].filter((c) => !have(c));
  if (missing.length) {
    process.stderr.write(`bench: needs ${missing.join(' and ')} (libnbd tools)\n`);
    process.exit(1);
  }
  if (!existsSync(CLI)) {
    process.stderr.write('bench: build first (npm run build): dist/cli.js is missing\n');
    process.exit(1);
  }
  const nativeVersion = opts['no-native'] ? undefined : have('nbdkit');
  const impls = nativeVersion ? ['ts', 'native'] : ['ts'];

  const dir = mkdtempSync(join(tmpdir(), 'nbdkit-ts-bench-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

  const files = { dir, big: join(dir, 'disk.img'), small: join(dir, 'small.img'), target: join(dir, 'target.img') };
  process.stderr.write(`bench: making ${SIZE / MiB} MiB and ${SMALL_SIZE / MiB} MiB disks in ${dir}\n`);
  makeDisk(files.big, SIZE);
  makeDisk(files.small, SMALL_SIZE);
  makeDisk(files.target, SIZE);

  /** results[plugin][workload][impl] = { times: [], byRun: { run: seconds }, peaks: [], error } */
  const results = {};
  for (const plugin of plugins) {
    results[plugin] = {};
    const broken = {}; // impl -> why the server would not start for this plugin
    for (const workloadName of workloads) {
      if (!runs(plugin, workloadName)) continue;
      const cell = (results[plugin][workloadName] = {});
      for (const impl of impls) cell[impl] = { times: [], byRun: {}, peaks: [] };
      await measureWorkload(plugin, workloadName, impls, files, cell, broken);
      const line = impls.map((impl) => `${impl} ${format(cell[impl], 'time')}`).join(', ');
      process.stderr.write(`bench: ${plugin} ${workloadName}: ${line}\n`);
    }
    for (const impl of impls) if (broken[impl]) results[plugin].broken = { ...results[plugin].broken, [impl]: broken[impl] };
  }

  const table = render(results, impls, nativeVersion);
  process.stdout.write(table);
  const { writeFileSync } = await import('node:fs');
  if (opts.json) {
    writeFileSync(opts.json, JSON.stringify({ date: new Date().toISOString(), size: SIZE, smallSize: SMALL_SIZE, runs: RUNS, results }, null, 2));
  }
  if (opts.svg) writeFileSync(opts.svg, chart(results, impls));
}

/**
 * The throughput ratios as horizontal bars, one per plugin and workload, with the 1.00 line
 * (under it nbdkit-ts is faster) and the spread of single-run ratios as a whisker.
 */
function chart(results, impls) {
  const bars = [];
  for (const plugin of plugins) {
    for (const workloadName of workloads) {
      const cell = results[plugin][workloadName];
      if (cell === undefined || !impls.includes('native')) continue;
      const value = Number(ratio(format(cell.ts, 'time'), format(cell.native, 'time')));
      const spread = pairedRange(cell.ts, cell.native).split('-').map(Number);
      bars.push({ label: `${plugin}: ${WORKLOADS[workloadName].title}`, value, spread });
    }
  }
  const row = 22;
  // Room for the longest label (about 6.6 px a character at 12 px).
  const left = 20 + Math.ceil(Math.max(0, ...bars.map((b) => b.label.length)) * 6.6);
  const width = 360;
  const top = 40;
  const finite = bars.flatMap((b) => [b.value, ...b.spread]).filter(Number.isFinite);
  const max = Math.max(2, Math.ceil(Math.max(1, ...finite) * 4) / 4);
  const x = (v) => left + (Math.min(v, max) / max) * width;
  const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const height = top + bars.length * row + 30;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 60}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="14">nbdkit-ts time / native nbdkit time (under 1.00: nbdkit-ts is faster), median of ${RUNS} runs</text>`,
  ];
  bars.forEach((bar, i) => {
    const y = top + i * row;
    parts.push(`<text x="${left - 8}" y="${y + 14}" text-anchor="end">${escape(bar.label)}</text>`);
    if (!Number.isFinite(bar.value)) {
      parts.push(`<text x="${left + 4}" y="${y + 14}" fill="#888">n/a</text>`);
      return;
    }
    const colour = bar.value <= 1 ? '#3a7d44' : '#b5473a';
    parts.push(`<rect x="${left}" y="${y + 3}" width="${(x(bar.value) - left).toFixed(1)}" height="14" fill="${colour}"/>`);
    if (bar.spread.every(Number.isFinite)) {
      const [low, high] = bar.spread.map(x);
      parts.push(`<line x1="${low.toFixed(1)}" x2="${high.toFixed(1)}" y1="${y + 10}" y2="${y + 10}" stroke="#222"/>`);
    }
    parts.push(`<text x="${x(bar.value) + 4}" y="${y + 14}">${bar.value.toFixed(2)}</text>`);
  });
  const one = x(1);
  parts.push(`<line x1="${one}" x2="${one}" y1="${top - 4}" y2="${top + bars.length * row}" stroke="#000" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${one}" y="${height - 10}" text-anchor="middle">1.00</text>`);
  parts.push('</svg>\n');
  return parts.join('\n');
}

function format(slot, kind) {
  if (!slot) return 'n/a';
  const values = kind === 'time' ? slot.times : slot.peaks;
  if (values.length === 0) return 'n/a';
  return kind === 'time' ? median(values).toFixed(3) : Math.max(...values).toFixed(0);
}

function ratio(a, b) {
  const x = Number(a);
  const y = Number(b);
  return Number.isFinite(x) && Number.isFinite(y) && y > 0 ? (x / y).toFixed(2) : 'n/a';
}

/**
 * The lowest and highest ratio of single runs, each nbdkit-ts run against the native run next
 * to it in time (the two take turns): how far one run's ratio can stray on this machine.
 */
function pairedRange(tsSlot, nativeSlot) {
  if (!tsSlot || !nativeSlot) return 'n/a';
  const ratios = Object.keys(tsSlot.byRun)
    .filter((run) => run in nativeSlot.byRun && nativeSlot.byRun[run] > 0)
    .map((run) => tsSlot.byRun[run] / nativeSlot.byRun[run]);
  if (ratios.length < 2) return 'n/a';
  return `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`;
}

function render(results, impls, nativeVersion) {
  const date = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const rows = [];
  for (const plugin of plugins) {
    const byWorkload = results[plugin];
    const peaks = { ts: [], native: [] };
    for (const workloadName of workloads) {
      const cell = byWorkload[workloadName];
      if (cell === undefined) continue;
      const ts = format(cell.ts, 'time');
      const native = impls.includes('native') ? format(cell.native, 'time') : 'n/a';
      const range = impls.includes('native') ? pairedRange(cell.ts, cell.native) : 'n/a';
      rows.push([plugin, WORKLOADS[workloadName].title + ' (s)', ts, native, ratio(ts, native), range]);
      for (const impl of impls) peaks[impl].push(...cell[impl].peaks);
    }
    const peakOf = (impl) => (peaks[impl].length ? Math.max(...peaks[impl]).toFixed(0) : 'n/a');
    rows.push([plugin, 'peak memory (MiB RSS)', peakOf('ts'), impls.includes('native') ? peakOf('native') : 'n/a', ratio(peakOf('ts'), peakOf('native')), '']);
  }
  const head = ['plugin', 'workload', 'nbdkit-ts', 'native', 'ratio', 'run ratios'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  const out = [
    `nbdkit-ts benchmark, ${date} UTC: ${availableParallelism()} CPUs, Node ${process.version}, ` +
      `native ${nativeVersion ?? 'not measured'}.`,
    `nbdcopy over a Unix socket; ${SIZE / MiB} MiB disk (${SMALL_SIZE / MiB} MiB for one at a time); ` +
      `median of ${RUNS} runs after a warm-up, ${COLD ? 'a fresh server for every run' : 'one server per workload'}; ` +
      'ratio = nbdkit-ts / native (under 1.00: nbdkit-ts is faster); run ratios = the lowest and highest ' +
      'ratio of one nbdkit-ts run to the native run beside it.',
    '',
    line(head),
    rule,
    ...rows.map(line),
    '',
  ];
  return out.join('\n');
}

await main();
