/**
 * info: `nbdkit-ts info [mode=MODE]`, a disk whose content is information about the
 * connection or the server (nbdkit-info-plugin(1)):
 *
 * - exportname (default): the export name the client asked for, as the disk's bytes;
 * - base64exportname: the export name decoded from base64;
 * - address: the client's address, `IP:PORT`, `[IPv6]:PORT`, or `unix`;
 * - time, uptime, conntime: 12 bytes, seconds (64 bits) and microseconds (32 bits), big-endian,
 *   of the wall-clock time, the time since the plugin was loaded, or since the connection was
 *   opened, updated at every read.
 */
import { CacheMode, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { decodeBase64Strict } from './base64.js';
import { unknownParameter } from './parse-number.js';

type Mode = 'exportname' | 'base64exportname' | 'address' | 'time' | 'uptime' | 'conntime';

const MODE_NAMES: Readonly<Record<string, Mode>> = {
  exportname: 'exportname',
  'export-name': 'exportname',
  base64exportname: 'base64exportname',
  'base64-export-name': 'base64exportname',
  address: 'address',
  time: 'time',
  uptime: 'uptime',
  conntime: 'conntime',
};

interface InfoHandle {
  data: Uint8Array;
  /** When the connection was opened, in microseconds since the epoch. */
  openedUs: bigint;
}

/** Microseconds since the epoch, at microsecond resolution as gettimeofday gives. */
function nowUs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));
}

const createInfoPlugin: PluginFactory = () => {
  let mode: Mode = 'exportname';
  const loadedUs = nowUs();

  const isTimeMode = (): boolean => mode === 'time' || mode === 'uptime' || mode === 'conntime';

  return {
    name: 'info',
    longname: 'nbdkit info plugin',
    description: 'A disk holding information about the connection or the server.',
    magic_config_key: 'mode',
    config_help: 'mode=exportname|base64exportname|address|time|uptime|conntime\n                                      Plugin mode (default exportname).',
    config(key, value) {
      if (key !== 'mode') throw unknownParameter(key);
      const chosen = MODE_NAMES[value.toLowerCase()];
      if (!chosen) throw new PluginError(`unknown mode: '${value}'`, 'EINVAL');
      mode = chosen;
    },
    dump_plugin: () => ['info_address=yes', 'info_base64=yes'],
    thread_model: () => ThreadModel.PARALLEL,

    open(_readonly, connection): InfoHandle {
      const openedUs = nowUs();
      switch (mode) {
        case 'exportname':
          return { data: Buffer.from(connection.exportName, 'utf8'), openedUs };
        case 'base64exportname':
          return { data: decodeBase64Strict(connection.exportName), openedUs };
        case 'address': {
          const peer = connection.peer;
          if (!peer) throw new PluginError('getpeername: Socket operation on non-socket', 'ENOTSOCK');
          let text = 'unix';
          if (peer.family === 'ipv4') text = `${peer.address}:${peer.port}`;
          else if (peer.family === 'ipv6') text = `[${peer.address}]:${peer.port}`;
          return { data: Buffer.from(text, 'latin1'), openedUs };
        }
        default:
          return { data: new Uint8Array(12), openedUs };
      }
    },
    get_size: (h) => BigInt((h as InfoHandle).data.length),
    // Time modes read differently at each read, and addresses differ between clients.
    can_multi_conn: () => mode === 'exportname' || mode === 'base64exportname',
    can_cache: () => CacheMode.NATIVE,
    // Every byte of buf is written (or the read fails).
    pread_fills_buffer: true,
    pread(h, buf, offset) {
      const handle = h as InfoHandle;
      if (isTimeMode()) {
        let us = nowUs();
        if (mode === 'uptime') us -= loadedUs;
        else if (mode === 'conntime') us -= handle.openedUs;
        const view = new DataView(handle.data.buffer, handle.data.byteOffset, 12);
        view.setBigInt64(0, us / 1000000n);
        view.setInt32(8, Number(us % 1000000n));
      }
      const start = Number(offset);
      buf.set(handle.data.subarray(start, start + buf.length));
    },
  };
};

export default createInfoPlugin;
