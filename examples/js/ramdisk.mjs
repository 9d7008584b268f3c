// A RAM disk as a JavaScript plugin for nbdkit-ts:
//   nbdkit-ts js examples/js/ramdisk.mjs size=64M
// Every function may be async; pread fills the buffer it is given.

let disk = new Uint8Array(64 * 1024 * 1024);

export function config(key, value) {
  if (key !== 'size') throw new Error(`unknown parameter ${key}`);
  const match = /^(\d+)([KMG]?)$/i.exec(value);
  if (!match) throw new Error(`cannot parse size ${value}`);
  const scale = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[match[2].toUpperCase()];
  disk = new Uint8Array(Number(match[1]) * scale);
}

// All connections share one array and JavaScript runs one callback at a time.
export const thread_model = () => 3; // NBDKIT_THREAD_MODEL_PARALLEL

export function open(readonly) {
  return { readonly };
}

export function get_size(h) {
  return disk.length;
}

export function pread(h, buf, offset, flags) {
  buf.set(disk.subarray(offset, offset + buf.length));
}

export function pwrite(h, buf, offset, flags) {
  disk.set(buf, offset);
}

export function zero(h, count, offset, flags) {
  disk.fill(0, offset, offset + count);
}

export function trim(h, count, offset, flags) {
  disk.fill(0, offset, offset + count);
}

export function flush(h, flags) {}
