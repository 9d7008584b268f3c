// An NBD server inside a Node program: a RAM disk written as a typed TypeScript plugin,
// served on a Unix socket (or a TCP port) until SIGINT or SIGTERM.
//
//   npm install nbdkit-ts typescript @types/node
//   npx tsc --module nodenext --target es2022 --types node ramdisk-server.ts
//   node ramdisk-server.js [--port PORT]
//   nbdinfo 'nbd+unix:///?socket=...'      # the URI it prints
import { type ConnectionInfo, type Plugin, PluginError, startServer, ThreadModel } from 'nbdkit-ts';

/** What `open` returns for each connection, and every later callback of it receives. */
interface Connection {
  readonly: boolean;
  exportName: string;
}

/** The plugin: nbdkit's callback names, as a `js` plugin module exports them. */
class RamDisk implements Plugin<Connection> {
  private disk: Uint8Array;

  constructor(size: number) {
    this.disk = new Uint8Array(size);
  }

  // startServer's params arrive here, as key=value parameters do on the command line.
  config(key: string, value: string): void {
    if (key !== 'label') throw new PluginError(`unknown parameter ${key}`, 'EINVAL');
    this.disk.set(new TextEncoder().encode(value));
  }

  // One array shared by all connections; JavaScript runs one callback at a time.
  thread_model() {
    return ThreadModel.PARALLEL;
  }

  open(readonly: boolean, connection: ConnectionInfo): Connection {
    return { readonly, exportName: connection.exportName };
  }

  get_size(): number {
    return this.disk.length;
  }

  pread(_h: Connection, buf: Uint8Array, offset: number | bigint): void {
    const start = Number(offset);
    buf.set(this.disk.subarray(start, start + buf.length));
  }

  pwrite(_h: Connection, buf: Uint8Array, offset: number | bigint): void {
    this.disk.set(buf, Number(offset));
  }

  zero(_h: Connection, count: number, offset: number | bigint): void {
    const start = Number(offset);
    this.disk.fill(0, start, start + count);
  }

  flush(): void {}
}

const portAt = process.argv.indexOf('--port');
const server = await startServer({
  plugin: new RamDisk(64 * 1024 * 1024),
  params: { label: 'nbdkit-ts example disk' },
  // A private Unix socket in a temporary directory, or TCP on the loopback address.
  listen: portAt > 0 ? { port: Number(process.argv[portAt + 1]), host: '127.0.0.1' } : { unix: '-' },
});
console.log(server.uri);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void server.close());
}
await server.closed;
