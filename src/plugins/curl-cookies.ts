/**
 * A small cookie engine for the curl plugin's cookiefile= and cookiejar=, as libcurl's: cookies
 * read from a Netscape-format file (the format curl and browsers write), cookies the server
 * sets remembered, the matching ones sent with each request, and all of them written to the
 * jar when the plugin unloads.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { PluginError } from '../host/plugin.js';

interface Cookie {
  domain: string;
  /** The cookie also goes to subdomains (a leading dot, or TRUE in the file). */
  subdomains: boolean;
  path: string;
  secure: boolean;
  /** Seconds since the epoch; 0 for a session cookie. */
  expires: number;
  name: string;
  value: string;
}

export class CookieJar {
  private cookies: Cookie[] = [];

  /** Read a Netscape cookie file; a missing file is an empty one, as libcurl treats it. */
  load(path: string): void {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      return;
    }
    for (let line of text.split('\n')) {
      // "#HttpOnly_" prefixes a cookie line; any other '#' line is a comment.
      if (line.startsWith('#HttpOnly_')) line = line.slice('#HttpOnly_'.length);
      else if (line.startsWith('#') || line.trim() === '') continue;
      const f = line.replace(/\r$/, '').split('\t');
      if (f.length < 7) continue;
      this.set({
        domain: f[0].replace(/^\./, '').toLowerCase(),
        subdomains: f[1].toUpperCase() === 'TRUE',
        path: f[2] || '/',
        secure: f[3].toUpperCase() === 'TRUE',
        expires: Number(f[4]) || 0,
        name: f[5],
        value: f.slice(6).join('\t'),
      });
    }
  }

  /** Write every unexpired cookie in the Netscape format. */
  save(path: string): void {
    const now = Date.now() / 1000;
    const lines = ['# Netscape HTTP Cookie File', '# Written by nbdkit-ts.', ''];
    for (const c of this.cookies) {
      if (c.expires !== 0 && c.expires < now) continue;
      const domain = c.subdomains ? `.${c.domain}` : c.domain;
      lines.push([domain, c.subdomains ? 'TRUE' : 'FALSE', c.path, c.secure ? 'TRUE' : 'FALSE', String(c.expires), c.name, c.value].join('\t'));
    }
    try {
      writeFileSync(path, lines.join('\n') + '\n');
    } catch (error) {
      throw new PluginError(`cookiejar: ${path}: ${(error as Error).message}`);
    }
  }

  /** Remember the cookies of a response's Set-Cookie headers. */
  store(url: URL, setCookie: string[] | undefined): void {
    for (const header of setCookie ?? []) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const cookie: Cookie = {
        domain: url.hostname.toLowerCase(),
        subdomains: false,
        path: url.pathname.replace(/\/[^/]*$/, '') || '/',
        secure: false,
        expires: 0,
        name: pair.slice(0, eq).trim(),
        value: pair.slice(eq + 1).trim(),
      };
      for (const attribute of attributes) {
        const [key, ...rest] = attribute.split('=');
        const value = rest.join('=').trim();
        switch (key.trim().toLowerCase()) {
          case 'domain':
            cookie.domain = value.replace(/^\./, '').toLowerCase();
            cookie.subdomains = true;
            break;
          case 'path':
            cookie.path = value || '/';
            break;
          case 'secure':
            cookie.secure = true;
            break;
          case 'expires': {
            const when = Date.parse(value);
            if (!Number.isNaN(when)) cookie.expires = Math.floor(when / 1000);
            break;
          }
          case 'max-age':
            if (/^-?\d+$/.test(value)) cookie.expires = Math.floor(Date.now() / 1000) + Number(value);
            break;
        }
      }
      this.set(cookie);
    }
  }

  /** The Cookie header value for a request to url, or undefined when none match. */
  header(url: URL): string | undefined {
    const host = url.hostname.toLowerCase();
    const now = Date.now() / 1000;
    const matching = this.cookies.filter(
      (c) =>
        (host === c.domain || (c.subdomains && host.endsWith(`.${c.domain}`))) &&
        url.pathname.startsWith(c.path) &&
        (!c.secure || url.protocol === 'https:') &&
        (c.expires === 0 || c.expires > now),
    );
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  private set(cookie: Cookie): void {
    this.cookies = this.cookies.filter((c) => !(c.domain === cookie.domain && c.path === cookie.path && c.name === cookie.name));
    this.cookies.push(cookie);
  }
}
