/**
 * The streaming plugin: `nbdkit-ts streaming pipe=FILENAME [size=SIZE]`.
 *
 * write=FILENAME (or pipe=, its older name): a client writing the disk from start to end
 * becomes a byte stream into FILENAME. read=FILENAME: a client reading the disk from start
 * to end receives the bytes of FILENAME. Going backwards is impossible on a stream, so it
 * puts the plugin in a permanent error state. See nbdkit-streaming-plugin(1).
 */
import { resolve as absolutePath } from 'node:path';
import type { Plugin, PluginFactory, PluginHost } from '../host/plugin.js';
import { PluginError, ThreadModel } from '../host/plugin.js';
import { openSink, openSource } from './streaming-pipe.js';
import type { ByteSink, ByteSource } from './streaming-pipe.js';

/** "Effectively infinite", yet a multiple of any sector size and within what qemu accepts. */
export const DEFAULT_STREAM_SIZE = (1n << 63n) - (1n << 30n);

// Gaps are filled with zeroes written in pieces of at most this size.
const ZERO_CHUNK = 1 << 20;

const factory: PluginFactory = (host: PluginHost): Plugin => {
  let mode: 'read' | 'write' | undefined;
  let filename: string | undefined;
  let size = DEFAULT_STREAM_SIZE;
  let sink: ByteSink | undefined;
  let source: ByteSource | undefined;
  /** Highest byte (+1) of the stream written or read so far. */
  let highest = 0n;
  let errorState = false;

  /** Enter the error state: no request and no new connection will succeed again. */
  function fail(message: string): PluginError {
    errorState = true;
    return new PluginError(message, 'EIO');
  }

  function checkState(): void {
    if (errorState) throw new PluginError('unrecoverable error state', 'EIO');
  }

  async function skipForward(offset: bigint): Promise<void> {
    const discard = new Uint8Array(ZERO_CHUNK);
    while (highest < offset) {
      const n = Number(offset - highest < BigInt(ZERO_CHUNK) ? offset - highest : BigInt(ZERO_CHUNK));
      await source!.readFully(discard.subarray(0, n));
      highest += BigInt(n);
    }
  }

  async function fillGap(offset: bigint): Promise<void> {
    const zeroes = new Uint8Array(ZERO_CHUNK);
    while (highest < offset) {
      const n = Number(offset - highest < BigInt(ZERO_CHUNK) ? offset - highest : BigInt(ZERO_CHUNK));
      await sink!.write(zeroes.subarray(0, n));
      highest += BigInt(n);
    }
  }

  return {
    name: 'streaming',
    longname: 'nbdkit streaming plugin',
    config_help:
      'read=<FILENAME>                The pipe or socket to read.\n' +
      'write=<FILENAME>               The pipe or socket to write.\n' +
      'pipe=<FILENAME>                Same as write=.\n' +
      'size=<SIZE>         (optional) Stream size.',

    config(key: string, value: string): void {
      if (key === 'write' || key === 'pipe' || key === 'read') {
        if (mode !== undefined) {
          throw new PluginError('you cannot use read and write options at the same time', 'EINVAL');
        }
        mode = key === 'read' ? 'read' : 'write';
        filename = absolutePath(value);
      } else if (key === 'size') {
        size = host.parseSize(value);
      } else {
        throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
      }
    },

    config_complete(): void {
      if (mode === undefined) {
        throw new PluginError(
          'you must supply either the read=<FILENAME> or write=<FILENAME> (or pipe=<FILENAME>) ' +
            'parameter after the plugin name on the command line',
          'EINVAL',
        );
      }
      // Checked here too (nbdkit only refuses at open) so that -r fails at start-up.
      if (host.readonly) throw new PluginError('you cannot use the -r option with the streaming plugin', 'EINVAL');
    },

    // One stream, one position: requests must be seen one at a time, in order.
    thread_model: () => ThreadModel.SERIALIZE_ALL_REQUESTS,

    async get_ready(): Promise<void> {
      const path = filename!;
      try {
        if (mode === 'write') sink = await openSink(path);
        else source = await openSource(path);
      } catch (err) {
        const message = (err as Error).message;
        throw new PluginError(message.startsWith('mknod:') ? message : `open: ${path}: ${message}`, 'EIO');
      }
    },

    async unload(): Promise<void> {
      await sink?.close().catch(() => undefined);
      await source?.close().catch(() => undefined);
      sink = source = undefined;
    },

    open(readonly: boolean): object {
      if (readonly) throw new PluginError('you cannot use the -r option with the streaming plugin', 'EINVAL');
      if (errorState) throw new PluginError('unrecoverable error state, no new connections can be opened', 'EIO');
      return {};
    },

    // In read mode the client may not write: as if -r had been given.
    can_write: () => mode === 'write',

    get_size: () => size,

    async pread(_h: unknown, buf: Uint8Array, offset: bigint): Promise<void> {
      checkState();
      if (mode === 'write') {
        // Nothing below the high-water mark can be read back, but beyond it is still zero.
        if (offset >= highest) {
          buf.fill(0);
          return;
        }
        throw fail('client tried to read, but the streaming plugin is being used in write mode (write= parameter)');
      }
      if (offset < highest) {
        throw fail('client tried to seek backwards and read: the streaming plugin does not support this');
      }
      try {
        await skipForward(offset);
        await source!.readFully(buf);
      } catch (err) {
        throw fail(`read: ${(err as Error).message}`);
      }
      highest += BigInt(buf.length);
    },

    async pwrite(_h: unknown, buf: Uint8Array, offset: bigint): Promise<void> {
      checkState();
      if (mode !== 'write') throw new PluginError('the streaming plugin is in read mode', 'EROFS');
      if (offset < highest) {
        throw fail('client tried to seek backwards and write: the streaming plugin does not support this');
      }
      try {
        await fillGap(offset);
        await sink!.write(buf);
      } catch (err) {
        throw fail(`write: ${(err as Error).message}`);
      }
      highest += BigInt(buf.length);
    },
  };
};

export default factory;
