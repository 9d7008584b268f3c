/**
 * nbd: a proxy to another NBD server, as nbdkit-nbd-plugin(1). Each client of ours gets its
 * own connection upstream (or all share one with shared=true); capabilities, block sizes,
 * the description and errors are the upstream server's. The NBD client is our own
 * (client-handshake.ts, client.ts), not libnbd.
 */
import { resolve } from 'node:path';
import {
  CacheMode,
  Flag,
  FuaMode,
  type Plugin,
  type PluginFactory,
  PluginError,
  type PluginHost,
  ThreadModel,
} from '../../host/plugin.js';
import { CommandFlag, TransmissionFlag } from '../../host/protocol.js';
import { parseBool } from '../parse-bool.js';
import { NbdClient } from './client.js';
import { HandshakeError, OptionSession, type TlsMode } from './client-handshake.js';
import { ActivatedCommand, type Target, type TlsSettings, openTransport, parseNbdUri, parsePort, tlsUpgrader } from './upstream.js';

const CONFIG_HELP = `[uri=]<URI>            URI of an NBD socket to connect to.
socket=<SOCKNAME>      The Unix socket to connect to.
hostname=<HOST>        The hostname for the TCP socket to connect to.
port=<PORT>            TCP port or service name to use (default 10809).
command=<COMMAND>      Command to run.
arg=<ARG>              Parameters for command.
socket-fd=<FD>         Socket file descriptor to connect to.
export=<NAME>          Export name to connect to (default "").
dynamic-export=<BOOL>  True to enable export name pass-through.
retry=<N>              Retry connection up to N seconds (default 0).
shared=<BOOL>          True to share one server connection among all clients,
                       rather than a connection per client (default false).
tls=<MODE>             How to use TLS; one of 'off', 'on', or 'require'.
tls-certificates=<DIR> Directory containing files for X.509 certificates.
tls-verify=<BOOL>      True (default for X.509) to validate server.
tls-username=<NAME>    Override username presented in X.509 TLS.
tls-psk=<FILE>         File containing Pre-Shared Key for TLS.`;

interface NbdHandle {
  client: NbdClient;
  /** nbdkit-ts was started with -r, or the client connected read-only. */
  readonly: boolean;
}

function parseTls(value: string): TlsMode {
  const word = value.toLowerCase();
  if (word === 'require' || word === 'required' || word === 'force') return 'require';
  return parseBool(value) ? 'on' : 'off';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const createNbdPlugin: PluginFactory = (host: PluginHost) => {
  // What the command line said.
  let socket: string | undefined;
  let hostname: string | undefined;
  let port: string | undefined;
  let vsock: string | undefined;
  let uri: string | undefined;
  const command: string[] = [];
  let socketFd: number | undefined;
  let exportName: string | undefined;
  let dynamicExport = false;
  let retry = 0;
  let shared = false;
  let tlsMode: TlsMode | undefined;
  const tls: Omit<TlsSettings, 'mode'> = {};

  // Settled by config_complete.
  let target: Target;
  let serverName: string | undefined;
  let tlsSettings: TlsSettings;
  let activated: ActivatedCommand | undefined;
  let sharedClient: Promise<NbdClient> | undefined;
  let commandStarted: Promise<void> | undefined;

  /** Connect and reach the option phase, retrying as retry= says. */
  async function startSession(): Promise<OptionSession> {
    if (activated) {
      commandStarted ??= activated.start();
      await commandStarted;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const stream = await openTransport(target, activated);
        try {
          return await OptionSession.start(stream, tlsSettings.mode, tlsUpgrader(tlsSettings, serverName));
        } catch (error) {
          stream.destroy();
          throw error;
        }
      } catch (error) {
        if (attempt >= retry || error instanceof HandshakeError) throw asPluginError(error);
        host.debug(`connect failed; will try again: ${(error as Error).message}`);
        await sleep(1000);
      }
    }
  }

  async function connectExport(name: string): Promise<NbdClient> {
    const session = await startSession();
    try {
      return new NbdClient(await session.go(name));
    } catch (error) {
      session.abort();
      throw asPluginError(error);
    }
  }

  function asPluginError(error: unknown): PluginError {
    if (error instanceof PluginError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    const message = (error as Error).message;
    return new PluginError(message, code && /^E[A-Z]+$/.test(code) ? code : 'EIO');
  }

  function sharedConnection(): Promise<NbdClient> {
    sharedClient ??= connectExport(exportName!);
    return sharedClient;
  }

  const plugin: Plugin = {
    name: 'nbd',
    longname: 'nbdkit nbd plugin',
    description: 'A proxy to another NBD server.',
    magic_config_key: 'uri',
    config_help: CONFIG_HELP,

    config(key, value) {
      switch (key) {
        case 'socket':
          socket = resolve(value);
          break;
        case 'hostname':
          hostname = value;
          break;
        case 'port':
          port = value;
          break;
        case 'vsock':
        case 'cid':
          vsock = value;
          break;
        case 'uri':
          uri = value;
          break;
        case 'command':
        case 'arg':
          command.push(value);
          break;
        case 'socket-fd': {
          const fd = Number(value);
          if (!/^-?\d+$/.test(value.trim())) throw new PluginError(`socket-fd: could not parse number: ${value}`, 'EINVAL');
          if (fd < 0) throw new PluginError('socket-fd must be >= 0', 'EINVAL');
          socketFd = fd;
          break;
        }
        case 'export':
          exportName = value;
          break;
        case 'dynamic-export':
          dynamicExport = parseBool(value);
          break;
        case 'retry':
          if (!/^\d+$/.test(value.trim())) throw new PluginError(`retry: could not parse number: ${value}`, 'EINVAL');
          retry = Number(value);
          break;
        case 'shared':
          shared = parseBool(value);
          break;
        case 'tls':
          tlsMode = parseTls(value);
          break;
        case 'tls-certificates':
          tls.certificates = resolve(value);
          break;
        case 'tls-verify':
          tls.verify = parseBool(value);
          break;
        case 'tls-username':
          tls.username = value;
          break;
        case 'tls-psk':
          tls.psk = resolve(value);
          break;
        default:
          throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
      }
    },

    config_complete() {
      const given = [socket, hostname, uri, vsock, socketFd].filter((v) => v !== undefined).length + (command.length > 0 ? 1 : 0);
      if (given > 1) {
        throw new PluginError("cannot mix Unix ‘socket’, TCP ‘hostname’/‘port’, ‘vsock’, ‘command’, ‘socket-fd’ and ‘uri’ parameters", 'EINVAL');
      }
      if (given === 0) {
        throw new PluginError("exactly one of ‘socket’, ‘hostname’, ‘vsock’, ‘command’, ‘socket-fd’ and ‘uri’ parameters must be specified", 'EINVAL');
      }
      if (port !== undefined && hostname === undefined && vsock === undefined) {
        throw new PluginError("‘port’ parameter should only be used with ‘hostname’ or ‘vsock’", 'EINVAL');
      }
      let uriTls: TlsMode | undefined;
      if (vsock !== undefined) throw new PluginError('vsock is not supported by nbdkit-ts', 'ENOTSUP');
      if (uri !== undefined) {
        const parsed = parseNbdUri(uri);
        target = parsed.target;
        if (target.kind === 'tcp') serverName = target.host;
        // With a URI the export name is the URI's (export= still wins, as libnbd applies it last).
        if (!dynamicExport && exportName === undefined) exportName = parsed.exportName;
        if (parsed.tlsRequired) uriTls = 'require';
        tls.username ??= parsed.username;
        tls.psk ??= parsed.psk;
        tls.certificates ??= parsed.certificates;
      } else if (socket !== undefined) {
        target = { kind: 'unix', path: socket };
      } else if (hostname !== undefined) {
        target = { kind: 'tcp', host: hostname, port: parsePort(port ?? '10809') };
        serverName = hostname;
      } else if (command.length > 0) {
        target = { kind: 'command', argv: command };
        activated = new ActivatedCommand(command, host.stdioSafe);
        shared = true;
      } else {
        target = { kind: 'fd', fd: socketFd! };
        shared = true;
      }
      if (dynamicExport) {
        if (exportName !== undefined && uri === undefined) {
          throw new PluginError("cannot mix 'dynamic-export' with explicit export name", 'EINVAL');
        }
        if (shared) throw new PluginError("cannot use 'dynamic-export' with shared connection", 'EINVAL');
      } else exportName ??= '';
      const anyTls = Object.values(tls).some((v) => v !== undefined);
      tlsSettings = { mode: uriTls ?? tlsMode ?? (anyTls ? 'on' : 'off'), ...tls };
    },

    dump_plugin: () => ['libnbd_tls=1', 'libnbd_uri=1', 'libnbd_vsock=0', 'libnbd_dynamic_list=1'],
    thread_model: () => ThreadModel.PARALLEL,

    async after_fork() {
      // As nbdkit: the shared connection is made once the server runs, and failing it is fatal.
      if (shared) await sharedConnection();
    },

    async unload() {
      if (sharedClient) (await sharedClient.catch(() => undefined))?.disconnect();
      activated?.stop();
    },

    async list_exports() {
      if (!dynamicExport) return [{ name: exportName! }];
      const session = await startSession();
      try {
        return (await session.list()).map((e) => ({ name: e.name, description: e.description }));
      } catch (error) {
        throw asPluginError(error);
      } finally {
        session.abort();
      }
    },

    async default_export() {
      if (!dynamicExport) return exportName!;
      // Best effort: the upstream server's canonical name for "", else "".
      try {
        const session = await startSession();
        try {
          return (await session.info('')).name ?? '';
        } finally {
          session.abort();
        }
      } catch {
        return '';
      }
    },

    async open(readonly, connection): Promise<NbdHandle> {
      const client = shared ? await sharedConnection() : await connectExport(dynamicExport ? connection.exportName : exportName!);
      return { client, readonly };
    },
    close(h) {
      if (!shared) (h as NbdHandle).client.disconnect();
    },

    export_description: (h) => (h as NbdHandle).client.details.description,
    get_size: (h) => (h as NbdHandle).client.details.size,
    block_size(h) {
      const b = (h as NbdHandle).client.details.blockSize;
      // nbdkit's "no information": all zeroes.
      return b ?? { minimum: 0, preferred: 0, maximum: 0 };
    },
    can_write: (h) => !(h as NbdHandle).client.readOnly && !(h as NbdHandle).readonly,
    can_flush: (h) => (h as NbdHandle).client.has(TransmissionFlag.SEND_FLUSH),
    is_rotational: (h) => (h as NbdHandle).client.has(TransmissionFlag.ROTATIONAL),
    can_trim: (h) => (h as NbdHandle).client.has(TransmissionFlag.SEND_TRIM),
    can_zero: (h) => (h as NbdHandle).client.has(TransmissionFlag.SEND_WRITE_ZEROES),
    can_fast_zero: (h) => (h as NbdHandle).client.has(TransmissionFlag.SEND_FAST_ZERO),
    can_fua: (h) => ((h as NbdHandle).client.has(TransmissionFlag.SEND_FUA) ? FuaMode.NATIVE : FuaMode.NONE),
    can_multi_conn: (h) => (h as NbdHandle).client.has(TransmissionFlag.CAN_MULTI_CONN),
    can_cache: (h) => ((h as NbdHandle).client.has(TransmissionFlag.SEND_CACHE) ? CacheMode.NATIVE : CacheMode.NONE),
    can_extents: (h) => (h as NbdHandle).client.baseAllocationId !== undefined,

    pread: (h, buf, offset) => (h as NbdHandle).client.pread(buf, offset),
    pwrite: (h, buf, offset, flags) => (h as NbdHandle).client.pwrite(buf, offset, (flags & Flag.FUA) !== 0),
    flush: (h) => (h as NbdHandle).client.flush(),
    trim: (h, count, offset, flags) => (h as NbdHandle).client.trim(count, offset, flags & Flag.FUA ? CommandFlag.FUA : 0),
    zero(h, count, offset, flags) {
      let wire = 0;
      if (!(flags & Flag.MAY_TRIM)) wire |= CommandFlag.NO_HOLE;
      if (flags & Flag.FUA) wire |= CommandFlag.FUA;
      if (flags & Flag.FAST_ZERO) wire |= CommandFlag.FAST_ZERO;
      return (h as NbdHandle).client.zero(count, offset, wire);
    },
    extents: (h, count, offset, flags, sink) =>
      (h as NbdHandle).client.blockStatus(count, offset, (flags & Flag.REQ_ONE) !== 0, (at, length, type) =>
        sink.add(at, BigInt(length), type),
      ),
    cache: (h, count, offset) => (h as NbdHandle).client.cache(count, offset),
  };
  return plugin;
};

export default createNbdPlugin;
