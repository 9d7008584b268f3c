/**
 * The curl plugin's proxy=: HTTP requests go to the proxy in absolute form, HTTPS ones through
 * a CONNECT tunnel, with proxy-user=/proxy-password= as Basic Proxy-Authorization, as libcurl
 * does for an http:// proxy. (Node's http has no proxy support of its own.)
 */
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { PluginError } from '../host/plugin.js';

export interface Proxy {
  host: string;
  port: number;
  /** The Proxy-Authorization header value, when credentials were given. */
  authorization?: string;
}

/** proxy=URL as libcurl reads it: http:// assumed, port 1080 by default, user:pass@ allowed. */
export function parseProxy(text: string, user: string | undefined, password: string | undefined): Proxy {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new PluginError(`proxy: ${text}: not a valid proxy URL`, 'EINVAL');
  }
  if (url.protocol !== 'http:') throw new PluginError(`proxy: ${url.protocol}// proxies are not supported by nbdkit-ts (only http://)`, 'EINVAL');
  const name = user ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const secret = password ?? (url.password ? decodeURIComponent(url.password) : '');
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 1080,
    authorization: name !== undefined ? `Basic ${Buffer.from(`${name}:${secret}`).toString('base64')}` : undefined,
  };
}

/** A socket to host:port through the proxy (HTTP CONNECT). */
export function tunnel(proxy: Proxy, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `${host}:${port}` };
    if (proxy.authorization) headers['proxy-authorization'] = proxy.authorization;
    const req = httpRequest({ host: proxy.host, port: proxy.port, method: 'CONNECT', path: `${host}:${port}`, headers });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) resolve(socket);
      else {
        socket.destroy();
        reject(new Error(`CONNECT tunnel failed, response ${res.statusCode}`));
      }
    });
    req.once('error', reject);
    req.end();
  });
}
