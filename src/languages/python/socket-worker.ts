/**
 * The thread that owns a Python plugin's network connections (see socket-bridge.ts).
 *
 * Python runs on the server's main thread and its socket calls must block, as they do in
 * CPython; the main thread therefore waits (Atomics.wait) while this worker's own event loop
 * does the real work with Node's `net`, `tls` and `dns`, and answers. Every connection's incoming
 * bytes are buffered here as they arrive, so `recv` is a copy out of the buffer, as from a
 * kernel's socket buffer.
 *
 * The worker is started from source text (`new Worker(code, { eval: true })`), so that it has no
 * file of its own to find in either build layout (tsc's modules or the bundled command). This
 * function must therefore refer to nothing outside itself: it gets the worker's `require` as
 * `load` (a call named `require` would be rewritten by the bundler).
 */
import type { SocketReply, SocketRequest } from './socket-protocol.js';

export function socketWorkerMain(load: NodeJS.Require): void {
  const net = load('node:net') as typeof import('node:net');
  const tls = load('node:tls') as typeof import('node:tls');
  const dns = load('node:dns') as typeof import('node:dns');
  const fs = load('node:fs') as typeof import('node:fs');
  const { workerData } = load('node:worker_threads') as typeof import('node:worker_threads');
  const signal = new Int32Array(workerData.signal as SharedArrayBuffer);
  const port = workerData.port as import('node:worker_threads').MessagePort;

  /** Beyond this much unread input a connection stops reading from the network. */
  const HIGH_WATER = 4 * 1024 * 1024;

  interface Connection {
    socket: import('node:net').Socket;
    chunks: Buffer[];
    buffered: number;
    eof: boolean;
    /** The error code that ended the connection (ECONNRESET, ...), reported once data runs out. */
    error: string | undefined;
    /** Shut for reading by the Python side: recv then sees the end. */
    readShut: boolean;
    /** Wakes whoever waits for input or a state change. */
    wake: (() => void) | undefined;
  }

  const connections = new Map<number, Connection>();
  let nextId = 1;

  function reply(message: SocketReply): void {
    port.postMessage(message);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  }

  function notify(conn: Connection): void {
    const wake = conn.wake;
    conn.wake = undefined;
    wake?.();
  }

  function attach(conn: Connection, socket: import('node:net').Socket): void {
    conn.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (conn.readShut) return;
      conn.chunks.push(chunk);
      conn.buffered += chunk.length;
      if (conn.buffered > HIGH_WATER) socket.pause();
      notify(conn);
    });
    socket.on('end', () => {
      conn.eof = true;
      notify(conn);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      conn.error ??= error.code ?? 'EIO';
      notify(conn);
    });
    socket.on('close', () => {
      conn.eof = true;
      notify(conn);
    });
  }

  function readable(conn: Connection): boolean {
    return conn.buffered > 0 || conn.eof || conn.error !== undefined || conn.readShut;
  }

  /** Resolve when input (or an end) is there, or after timeout seconds (null: never). */
  function waitReadable(conn: Connection, timeout: number | null): Promise<boolean> {
    if (readable(conn)) return Promise.resolve(true);
    if (timeout === 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      conn.wake = () => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      if (timeout !== null) {
        timer = setTimeout(() => {
          conn.wake = undefined;
          resolve(false);
        }, timeout * 1000);
      }
    });
  }

  function take(conn: Connection, max: number): Buffer {
    if (conn.chunks.length === 1 && conn.chunks[0].length <= max) {
      const only = conn.chunks[0];
      conn.chunks = [];
      conn.buffered = 0;
      if (conn.socket.isPaused()) conn.socket.resume();
      return only;
    }
    const parts: Buffer[] = [];
    let size = 0;
    while (size < max && conn.chunks.length > 0) {
      const head = conn.chunks[0];
      const room = max - size;
      if (head.length <= room) {
        parts.push(head);
        size += head.length;
        conn.chunks.shift();
      } else {
        parts.push(head.subarray(0, room));
        conn.chunks[0] = head.subarray(room);
        size += room;
      }
    }
    conn.buffered -= size;
    if (conn.buffered <= HIGH_WATER && conn.socket.isPaused()) conn.socket.resume();
    return Buffer.concat(parts, size);
  }

  function lookup(id: number): Connection | undefined {
    return connections.get(id);
  }

  function addresses(socket: import('node:net').Socket): Pick<SocketReply, 'local' | 'peer'> {
    return {
      local: [socket.localAddress ?? '', socket.localPort ?? 0],
      peer: [socket.remoteAddress ?? '', socket.remotePort ?? 0],
    };
  }

  async function connect(request: SocketRequest): Promise<SocketReply> {
    const timeout = request.timeout ?? null;
    return new Promise((resolve) => {
      const options = request.path !== undefined ? { path: request.path } : { host: request.host!, port: request.port! };
      const socket = net.connect(options);
      socket.setNoDelay(true);
      let timer: NodeJS.Timeout | undefined;
      const fail = (error: NodeJS.ErrnoException) => {
        if (timer) clearTimeout(timer);
        socket.destroy();
        resolve({ error: error.code ?? 'EIO', message: error.message });
      };
      socket.once('error', fail);
      if (timeout !== null) {
        timer = setTimeout(() => {
          socket.off('error', fail);
          socket.on('error', () => undefined);
          socket.destroy();
          resolve({ timeout: true });
        }, timeout * 1000);
      }
      socket.once('connect', () => {
        if (timer) clearTimeout(timer);
        socket.off('error', fail);
        const conn: Connection = {
          socket, chunks: [], buffered: 0, eof: false, error: undefined, readShut: false, wake: undefined,
        };
        attach(conn, socket);
        const id = nextId++;
        connections.set(id, conn);
        resolve({ id, ...(request.path !== undefined ? {} : addresses(socket)) });
      });
    });
  }

  async function recv(request: SocketRequest): Promise<SocketReply> {
    const conn = lookup(request.id!);
    if (!conn) return { error: 'EBADF' };
    const ready = await waitReadable(conn, request.timeout ?? null);
    if (!ready) return request.timeout === 0 ? { error: 'EAGAIN' } : { timeout: true };
    if (conn.buffered > 0) return { data: take(conn, request.size!) };
    if (conn.error !== undefined && !conn.readShut) return { error: conn.error };
    return { data: Buffer.alloc(0) };
  }

  async function send(request: SocketRequest): Promise<SocketReply> {
    const conn = lookup(request.id!);
    if (!conn) return { error: 'EBADF' };
    if (conn.error !== undefined) return { error: conn.error === 'ECONNRESET' ? 'ECONNRESET' : 'EPIPE' };
    const socket = conn.socket;
    if (socket.writableEnded || socket.destroyed) return { error: 'EPIPE' };
    const data = request.data!;
    return new Promise((resolve) => {
      // As a kernel's send: accepted into the buffer at once, unless the buffer is full, when
      // the caller waits for room (or its timeout).
      if (socket.write(data)) {
        resolve({ sent: data.length });
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        socket.off('close', done);
        resolve({ sent: data.length });
      };
      socket.once('drain', done);
      socket.once('close', done);
      const timeout = request.timeout ?? null;
      if (timeout !== null && timeout > 0) {
        timer = setTimeout(() => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve({ sent: data.length });
        }, timeout * 1000);
      }
    });
  }

  function systemCertificates(): string[] | undefined {
    // OpenSSL's default locations, as Python's ssl module loads them.
    const file = process.env.SSL_CERT_FILE || '/etc/ssl/certs/ca-certificates.crt';
    try {
      return [fs.readFileSync(file, 'utf8')];
    } catch {
      // Fall through to the directory.
    }
    const dir = process.env.SSL_CERT_DIR || '/etc/ssl/certs';
    try {
      return fs.readdirSync(dir).filter((n) => n.endsWith('.pem') || n.endsWith('.crt'))
        .map((n) => fs.readFileSync(`${dir}/${n}`, 'utf8'));
    } catch {
      return undefined;
    }
  }
  let defaultCertificates: string[] | undefined | null = null;

  function describeCertificate(cert: import('node:tls').PeerCertificate | undefined): SocketReply['certificate'] {
    if (!cert || Object.keys(cert).length === 0) return undefined;
    return {
      subject: Object.entries(cert.subject ?? {}).map(([k, v]) => [k, String(v)]),
      issuer: Object.entries(cert.issuer ?? {}).map(([k, v]) => [k, String(v)]),
      notBefore: cert.valid_from,
      notAfter: cert.valid_to,
      serialNumber: cert.serialNumber,
      subjectAltName: cert.subjectaltname ?? '',
      der: cert.raw ? cert.raw.toString('base64') : '',
    };
  }

  async function startTls(request: SocketRequest): Promise<SocketReply> {
    const conn = lookup(request.id!);
    if (!conn) return { error: 'EBADF' };
    const tlsOptions = request.tls!;
    let ca: string[] | undefined = tlsOptions.ca;
    if (tlsOptions.systemCa) {
      if (defaultCertificates === null) defaultCertificates = systemCertificates();
      ca = [...(ca ?? []), ...(defaultCertificates ?? [])];
    }
    const plain = conn.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('close');
    const leftover = conn.chunks;
    conn.chunks = [];
    conn.buffered = 0;
    if (leftover.length > 0) plain.unshift(Buffer.concat(leftover));
    return new Promise((resolve) => {
      let settled = false;
      const secure = tls.connect({
        socket: plain,
        servername: tlsOptions.servername && net.isIP(tlsOptions.servername) === 0 ? tlsOptions.servername : undefined,
        ca,
        cert: tlsOptions.cert,
        key: tlsOptions.key,
        ALPNProtocols: tlsOptions.alpn,
        minVersion: tlsOptions.minVersion as import('node:tls').SecureVersion | undefined,
        maxVersion: tlsOptions.maxVersion as import('node:tls').SecureVersion | undefined,
        // Checked below, to report failures as Python's ssl module does.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      });
      let timer: NodeJS.Timeout | undefined;
      const finish = (result: SocketReply) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        resolve(result);
      };
      if (request.timeout !== undefined && request.timeout !== null && request.timeout > 0) {
        timer = setTimeout(() => {
          secure.destroy();
          finish({ timeout: true });
        }, request.timeout * 1000);
      }
      secure.once('error', (error: NodeJS.ErrnoException) => {
        finish({ error: 'SSL', message: error.message });
      });
      secure.once('secureConnect', () => {
        const peer = secure.getPeerCertificate(false);
        if (tlsOptions.verify && !secure.authorized) {
          const reason = String(secure.authorizationError ?? 'unknown error');
          secure.destroy();
          finish({ error: 'CERT', message: reason });
          return;
        }
        if (tlsOptions.verify && tlsOptions.checkHostname && tlsOptions.servername) {
          const mismatch = tls.checkServerIdentity(tlsOptions.servername, peer);
          if (mismatch) {
            secure.destroy();
            finish({ error: 'CERT', message: `Hostname mismatch, certificate is not valid for '${tlsOptions.servername}'.` });
            return;
          }
        }
        conn.eof = false;
        conn.error = undefined;
        attach(conn, secure);
        const cipher = secure.getCipher();
        finish({
          certificate: describeCertificate(peer),
          version: secure.getProtocol() ?? undefined,
          cipher: cipher ? [cipher.standardName ?? cipher.name, cipher.version, 0] : undefined,
          alpn: typeof secure.alpnProtocol === 'string' ? secure.alpnProtocol : undefined,
        });
      });
    });
  }

  async function poll(request: SocketRequest): Promise<SocketReply> {
    const items = request.items!;
    const check = (): [number, number][] => {
      const ready: [number, number][] = [];
      for (const [id, events] of items) {
        const conn = lookup(id);
        let revents = 0;
        if (!conn) revents = 32; // POLLNVAL
        else {
          if (events & 1 && readable(conn)) revents |= 1;
          if (events & 4 && !conn.socket.destroyed && conn.socket.writableLength < HIGH_WATER) revents |= 4;
          if (conn.error !== undefined) revents |= 8;
          if (conn.eof) revents |= 16;
        }
        if (revents) ready.push([id, revents]);
      }
      return ready;
    };
    let ready = check();
    const timeout = request.timeout ?? null;
    if (ready.length > 0 || timeout === 0) return { ready };
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        for (const [id] of items) {
          const conn = lookup(id);
          if (conn && conn.wake === done) conn.wake = undefined;
        }
        resolve();
      };
      for (const [id] of items) {
        const conn = lookup(id);
        if (conn) conn.wake = done;
      }
      if (timeout !== null) timer = setTimeout(done, timeout * 1000);
    });
    ready = check();
    return { ready };
  }

  function shutdown(request: SocketRequest): SocketReply {
    const conn = lookup(request.id!);
    if (!conn) return { error: 'EBADF' };
    const how = request.how ?? 2;
    if (how === 0 || how === 2) {
      conn.readShut = true;
      conn.chunks = [];
      conn.buffered = 0;
      notify(conn);
    }
    if (how === 1 || how === 2) conn.socket.end();
    return {};
  }

  function close(request: SocketRequest): SocketReply {
    const conn = lookup(request.id!);
    if (conn) {
      connections.delete(request.id!);
      conn.socket.destroy();
    }
    return {};
  }

  async function resolveName(request: SocketRequest): Promise<SocketReply> {
    try {
      const found = await dns.promises.lookup(request.host!, { all: true, family: request.family ?? 0 });
      return { addresses: found.map((a) => [a.address, a.family]) };
    } catch (error) {
      return { error: (error as NodeJS.ErrnoException).code ?? 'EAI_FAIL', message: (error as Error).message };
    }
  }

  async function handle(request: SocketRequest): Promise<SocketReply> {
    switch (request.op) {
      case 'resolve': return resolveName(request);
      case 'connect': return connect(request);
      case 'recv': return recv(request);
      case 'send': return send(request);
      case 'starttls': return startTls(request);
      case 'poll': return poll(request);
      case 'shutdown': return shutdown(request);
      case 'close': return close(request);
      default: return { error: 'EINVAL' };
    }
  }

  // Whatever goes wrong in here, the main thread is waiting for an answer: an error it gets.
  process.on('uncaughtException', (error: Error) => reply({ error: 'EIO', message: String(error) }));
  process.on('exit', () => {
    Atomics.store(signal, 0, 2);
    Atomics.notify(signal, 0);
  });
  port.on('message', (request: SocketRequest) => {
    handle(request).then(reply, (error: unknown) => reply({ error: 'EIO', message: String(error) }));
  });
}
