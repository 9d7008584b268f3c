/**
 * curl: a disk read from a URL, as nbdkit-curl-plugin(1), on Node's own http/https (no
 * libcurl): the size from a HEAD request, each read a GET with a byte Range. http://,
 * https:// and file: URLs. Read-only: nbdkit's writes are libcurl uploads, which an HTTP
 * server does not take as writes to a range.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { Agent as HttpAgent, type IncomingMessage, type OutgoingHttpHeaders, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { type SecureVersion, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { type Plugin, type PluginFactory, PluginError, ThreadModel } from '../host/plugin.js';
import { parseBool } from './parse-bool.js';
import { readFullySync } from './read-fully.js';
import { CookieJar } from './curl-cookies.js';
import { type Proxy, parseProxy, tunnel } from './curl-proxy.js';
import { CurlScripts } from './curl-scripts.js';
import { readPassword } from './read-password.js';

const CONFIG_HELP = `cainfo=<CAINFO>     Path to Certificate Authority file.
capath=<CAPATH>     Path to directory with CA certificates.
cookie=<COOKIE>     Set HTTP/HTTPS cookies.
cookiefile=         Enable cookie processing.
cookiefile=<FILENAME> Read cookies from file.
cookiejar=<FILENAME> Read and write cookies to jar.
cookie-script=<SCRIPT> Script to set HTTP/HTTPS cookies.
cookie-script-renew=<SECS> Time to renew HTTP/HTTPS cookies.
followlocation=false  Do not follow redirects.
header=<HEADER>     Set HTTP/HTTPS header.
header-script=<SCRIPT> Script to set HTTP/HTTPS headers.
header-script-renew=<SECS> Time to renew HTTP/HTTPS headers.
password=<PASSWORD> The password for the user account.
proxy=<PROXY>       Set proxy URL.
proxy-password=<PASSWORD> The proxy password.
proxy-user=<USER>   The proxy user.
protocols=PROTO,PROTO,..  Limit protocols allowed.
sslverify=false     Do not verify SSL certificate of remote host.
ssl-version=<VERSION>  Specify preferred TLS/SSL version.
ssl-cipher-list=C1:C2:..  Specify TLS/SSL cipher suites to be used.
tls13-ciphers=C1:C2:..  Specify TLS 1.3 cipher suites to be used.
tcp-keepalive=true  Enable TCP keepalives.
tcp-nodelay=false   Disable Nagle’s algorithm.
timeout=<TIMEOUT>   Set the timeout for requests (seconds).
unix-socket-path=<PATH>  Open Unix domain socket instead of TCP/IP.
url=<URL>           (required) The disk image URL to serve.
user=<USER>         The user to log in as.
user-agent=<USER-AGENT>  Send user-agent header for HTTP/HTTPS.`;

const SSL_VERSIONS: Readonly<Record<string, SecureVersion>> = {
  tlsv1: 'TLSv1', 'tlsv1.0': 'TLSv1', 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3',
};

/** libcurl's limit on redirects followed (CURLOPT_MAXREDIRS in nbdkit's curl plugin). */
const MAX_REDIRECTS = 20;

interface Response {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

interface CurlHandle {
  size: bigint;
  /** For file: URLs, the open file. */
  fd?: number;
}

const createCurlPlugin: PluginFactory = (host) => {
  let url: string | undefined;
  const headers: string[] = [];
  let cookie: string | undefined;
  let user: string | undefined;
  let password: string | undefined;
  let sslVerify = true;
  let timeoutSeconds = 0;
  let followLocation = true;
  let cainfo: string | undefined;
  let capath: string | undefined;
  let userAgent: string | undefined;
  let unixSocketPath: string | undefined;
  let protocols: string[] | undefined;
  let tcpKeepalive = false;
  let tcpNodelay = true;
  let sslVersion: SecureVersion | undefined;
  let cipherList: string | undefined;
  let tls13Ciphers: string | undefined;

  let proxyText: string | undefined;
  let proxyUser: string | undefined;
  let proxyPassword: string | undefined;
  let proxy: Proxy | undefined;
  let cookieFile: string | undefined;
  let cookieJarFile: string | undefined;
  let headerScript: string | undefined;
  let headerRenew: number | undefined;
  let cookieScript: string | undefined;
  let cookieRenew: number | undefined;

  let agents: { http: HttpAgent; https: HttpsAgent } | undefined;
  /** The cookie engine, when cookiefile= or cookiejar= turned it on. */
  let jar: CookieJar | undefined;
  let scripts: CurlScripts | undefined;
  /** What the scripts gave last. */
  let fromScripts: { headers: string[]; cookie: string | undefined } = { headers: [], cookie: undefined };

  function parseSeconds(key: string, value: string): number {
    if (!/^\d+$/.test(value)) throw new PluginError(`${key}: could not parse number: ${value}`, 'EINVAL');
    return Number(value);
  }

  async function runScripts(): Promise<void> {
    if (scripts?.active) fromScripts = await scripts.refresh(url!);
  }

  function makeAgents(): { http: HttpAgent; https: HttpsAgent } {
    let ca: Buffer[] | undefined;
    if (cainfo !== undefined || capath !== undefined) {
      ca = [];
      if (cainfo !== undefined && statSync(cainfo).size > 0) ca.push(readFileSync(cainfo));
      if (capath !== undefined && statSync(capath).isDirectory()) {
        for (const name of readdirSync(capath)) {
          const text = readFileSync(join(capath, name), 'latin1');
          if (text.includes('-----BEGIN CERTIFICATE-----')) ca.push(Buffer.from(text, 'latin1'));
        }
      }
      // An empty CA list (cainfo=/dev/null) leaves Node's own, as libcurl keeps its default.
      if (ca.length === 0) ca = undefined;
    }
    const ciphers = [cipherList, tls13Ciphers].filter((c) => c !== undefined).join(':') || undefined;
    return {
      http: new HttpAgent({ keepAlive: true }),
      https: new HttpsAgent({
        keepAlive: true,
        rejectUnauthorized: sslVerify,
        ca,
        minVersion: sslVersion,
        ciphers,
      }),
    };
  }

  /**
   * Our request headers: the user's (or header-script's), with curl's "Name:" (remove) and
   * "Name;" (empty) forms; cookie= (or cookie-script's) and the engine's cookies.
   */
  function requestHeaders(target: URL, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    if (userAgent !== undefined) out['user-agent'] = userAgent;
    const cookies = [cookie ?? fromScripts.cookie, jar?.header(target)].filter((c) => c !== undefined);
    if (cookies.length) out.cookie = cookies.join('; ');
    if (user !== undefined) out.authorization = `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}`;
    Object.assign(out, extra);
    for (const header of [...headers, ...fromScripts.headers]) {
      const colon = header.indexOf(':');
      if (colon === -1) {
        if (header.endsWith(';')) out[header.slice(0, -1).trim().toLowerCase()] = '';
        continue;
      }
      const name = header.slice(0, colon).trim().toLowerCase();
      const value = header.slice(colon + 1).trim();
      if (value === '') delete out[name];
      else out[name] = value;
    }
    return out;
  }

  /** One HTTP(S) request, following redirects when allowed; the whole body is kept. */
  async function perform(method: 'HEAD' | 'GET', extra: OutgoingHttpHeaders, what: string): Promise<Response> {
    let target = new URL(url!);
    for (let redirects = 0; ; redirects++) {
      const response = await once(method, target, extra, what);
      const location = response.headers.location;
      if (followLocation && location && [301, 302, 303, 307, 308].includes(response.status)) {
        if (redirects >= MAX_REDIRECTS) throw new PluginError(`${what}: Maximum (${MAX_REDIRECTS}) redirects followed`);
        target = new URL(location, target);
        if (!allowed(target.protocol)) throw new PluginError(`${what}: Protocol "${target.protocol.slice(0, -1)}" not supported or disabled`);
        continue;
      }
      if (response.status >= 400) {
        throw new PluginError(`${what}: HTTP response code said error: The requested URL returned error: ${response.status}`);
      }
      return response;
    }
  }

  /**
   * How a request reaches its server: the keep-alive agents; a Unix socket; or the proxy, in
   * absolute form for http and through a CONNECT tunnel (one per request) for https.
   */
  async function route(target: URL, secure: boolean, headers: OutgoingHttpHeaders): Promise<Parameters<typeof httpRequest>[1]> {
    agents ??= makeAgents();
    if (unixSocketPath !== undefined) return { socketPath: unixSocketPath, ...(secure ? { rejectUnauthorized: sslVerify } : {}) };
    if (!proxy) return { agent: secure ? agents.https : agents.http };
    if (!secure) {
      if (proxy.authorization) headers['proxy-authorization'] = proxy.authorization;
      return { host: proxy.host, port: proxy.port, path: target.href, headers: { ...headers, host: target.host }, agent: agents.http };
    }
    const port = target.port ? Number(target.port) : 443;
    const raw = await tunnel(proxy, target.hostname, port);
    const options = agents.https.options;
    const secureSocket = tlsConnect({ socket: raw, servername: target.hostname, rejectUnauthorized: sslVerify, ca: options.ca, minVersion: options.minVersion, ciphers: options.ciphers });
    return { createConnection: () => secureSocket };
  }

  async function once(method: 'HEAD' | 'GET', target: URL, extra: OutgoingHttpHeaders, what: string): Promise<Response> {
    const secure = target.protocol === 'https:';
    const send = secure ? httpsRequest : httpRequest;
    const headers = requestHeaders(target, extra);
    let via: Parameters<typeof httpRequest>[1];
    try {
      via = await route(target, secure, headers);
    } catch (error) {
      throw new PluginError(`${what}: ${(error as Error).message}`, 'EIO');
    }
    return new Promise((resolve, reject) => {
      const req = send(target, { method, headers, ...via });
      let timer: NodeJS.Timeout | undefined;
      if (timeoutSeconds > 0) {
        timer = setTimeout(() => req.destroy(new Error(`Operation timed out after ${timeoutSeconds * 1000} milliseconds`)), timeoutSeconds * 1000);
      }
      req.on('socket', (socket) => {
        socket.setNoDelay(tcpNodelay);
        if (tcpKeepalive) socket.setKeepAlive(true);
      });
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(new PluginError(`${what}: ${error.message}`, 'EIO'));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => {
          clearTimeout(timer);
          reject(new PluginError(`${what}: ${error.message}`, 'EIO'));
        });
        res.on('end', () => {
          clearTimeout(timer);
          jar?.store(target, res.headers['set-cookie']);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });
      req.end();
    });
  }

  function allowed(protocol: string): boolean {
    const name = protocol.replace(/:$/, '').toLowerCase();
    return protocols === undefined || protocols.includes(name);
  }

  const plugin: Plugin = {
    name: 'curl',
    longname: 'nbdkit curl plugin',
    description: 'A disk image read from an HTTP, HTTPS or file URL.',
    magic_config_key: 'url',
    config_help: CONFIG_HELP,

    config(key, value) {
      switch (key) {
        case 'url':
          url = value;
          break;
        case 'header':
          headers.push(value);
          break;
        case 'cookie':
          cookie = readPassword(value, host);
          break;
        case 'user':
          user = value;
          break;
        case 'proxy':
          proxyText = value;
          break;
        case 'proxy-user':
          proxyUser = value;
          break;
        case 'proxy-password':
          proxyPassword = readPassword(value, host);
          break;
        case 'cookiefile':
          if (value === '-') throw new PluginError('cookiefile parameter cannot be "-"', 'EINVAL');
          cookieFile = value;
          break;
        case 'cookiejar':
          if (value === '-') throw new PluginError('cookiejar parameter cannot be "-"', 'EINVAL');
          cookieJarFile = value;
          break;
        case 'header-script':
          headerScript = value;
          break;
        case 'header-script-renew':
          headerRenew = parseSeconds(key, value);
          break;
        case 'cookie-script':
          cookieScript = value;
          break;
        case 'cookie-script-renew':
          cookieRenew = parseSeconds(key, value);
          break;
        case 'password':
          password = readPassword(value, host);
          break;
        case 'sslverify':
          sslVerify = parseBool(value);
          break;
        case 'timeout':
          if (!/^\d+$/.test(value)) throw new PluginError(`timeout: could not parse number: ${value}`, 'EINVAL');
          timeoutSeconds = Number(value);
          if (timeoutSeconds > 2147483) throw new PluginError('timeout is too large', 'EINVAL');
          break;
        case 'followlocation':
          followLocation = parseBool(value);
          break;
        case 'cainfo':
          cainfo = value;
          break;
        case 'capath':
          capath = value;
          break;
        case 'user-agent':
          userAgent = value;
          break;
        case 'unix-socket-path':
        case 'unix_socket_path':
          unixSocketPath = value;
          break;
        case 'protocols': {
          const list = value.split(',').map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
          if (list.length === 0) throw new PluginError('protocols: empty list of protocols is not allowed', 'EINVAL');
          for (const p of list) {
            if (!['http', 'https', 'file'].includes(p)) throw new PluginError(`protocols: protocol name not supported by nbdkit-ts: ${p}`, 'EINVAL');
          }
          protocols = list;
          break;
        }
        case 'tcp-keepalive':
          tcpKeepalive = parseBool(value);
          break;
        case 'tcp-nodelay':
          tcpNodelay = parseBool(value);
          break;
        case 'ssl-version': {
          const version = SSL_VERSIONS[value.toLowerCase()];
          if (!version) throw new PluginError(`ssl-version: ${value} is not supported by nbdkit-ts`, 'EINVAL');
          sslVersion = version;
          break;
        }
        case 'ssl-cipher-list':
          cipherList = value;
          break;
        case 'tls13-ciphers':
          tls13Ciphers = value;
          break;
        default:
          throw new PluginError(`unknown parameter '${key}'`, 'EINVAL');
      }
    },
    config_complete() {
      if (url === undefined) throw new PluginError('you must supply the url=<URL> parameter after the plugin name on the command line', 'EINVAL');
      if (headers.length && headerScript !== undefined) throw new PluginError('header and header-script cannot be used at the same time', 'EINVAL');
      if (headerRenew !== undefined && headerScript === undefined) throw new PluginError('header-script-renew cannot be used without header-script', 'EINVAL');
      if (cookie !== undefined && cookieScript !== undefined) throw new PluginError('cookie and cookie-script cannot be used at the same time', 'EINVAL');
      if (cookieRenew !== undefined && cookieScript === undefined) throw new PluginError('cookie-script-renew cannot be used without cookie-script', 'EINVAL');
      if (proxyText !== undefined) proxy = parseProxy(proxyText, proxyUser, proxyPassword);
      scripts = new CurlScripts(host, { headerScript, headerRenew: headerRenew ?? 0, cookieScript, cookieRenew: cookieRenew ?? 0 });
      // As libcurl: cookiefile= (even empty) or cookiejar= turns the cookie engine on.
      if (cookieFile !== undefined || cookieJarFile !== undefined) {
        jar = new CookieJar();
        if (cookieFile) jar.load(cookieFile);
      }
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new PluginError(`url: ${url}: URL using bad/illegal format or missing URL`, 'EINVAL');
      }
      if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) {
        throw new PluginError(`url: Protocol "${parsed.protocol.slice(0, -1)}" not supported by nbdkit-ts (http, https and file are)`, 'ENOTSUP');
      }
    },
    thread_model: () => ThreadModel.PARALLEL,

    async open(): Promise<CurlHandle> {
      const target = new URL(url!);
      await runScripts();
      if (!allowed(target.protocol)) throw new PluginError(`Protocol "${target.protocol.slice(0, -1)}" not supported or disabled in nbdkit-ts`);
      if (target.protocol === 'file:') {
        const path = fileURLToPath(target);
        try {
          const fd = openSync(path, 'r');
          return { fd, size: fstatSync(fd, { bigint: true }).size };
        } catch (error) {
          throw new PluginError(`problem doing HEAD request to fetch size of URL [${url}]: Couldn't read a file:// file: ${(error as Error).message}`);
        }
      }
      const response = await perform('HEAD', {}, `problem doing HEAD request to fetch size of URL [${url}]`);
      const length = response.headers['content-length'];
      if (length === undefined || !/^\d+$/.test(length)) {
        throw new PluginError(`could not get length of remote file [${url}], is the URL correct?`);
      }
      host.debug(`content length: ${length}`);
      if (!/bytes/i.test(String(response.headers['accept-ranges'] ?? ''))) {
        throw new PluginError("server does not support 'range' (byte range) requests");
      }
      host.debug('accept range supported (for HTTP/HTTPS)');
      return { size: BigInt(length) };
    },
    close(h) {
      const fd = (h as CurlHandle).fd;
      if (fd !== undefined) closeSync(fd);
    },
    get_size: (h) => (h as CurlHandle).size,
    can_write: () => false,

    async pread(h, buf, offset) {
      const handle = h as CurlHandle;
      if (handle.fd !== undefined) return readFullySync(handle.fd, buf, offset);
      await runScripts();
      const last = offset + BigInt(buf.length) - 1n;
      const response = await perform('GET', { range: `bytes=${offset}-${last}` }, 'pread: curl_easy_perform');
      // A server that ignored the range sends the whole file with 200: take our part of it.
      const body = response.status === 200 ? response.body.subarray(Number(offset), Number(offset) + buf.length) : response.body;
      if (body.length !== buf.length) {
        throw new PluginError(`pread: server sent ${body.length} bytes, expected ${buf.length}`);
      }
      buf.set(body);
    },
    unload() {
      if (jar && cookieJarFile) jar.save(cookieJarFile);
      agents?.http.destroy();
      agents?.https.destroy();
    },
  };
  return plugin;
};

export default createCurlPlugin;
