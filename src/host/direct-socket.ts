/**
 * Accepted sockets whose reads land in memory the InputReader chooses (Node's `onread` option)
 * instead of a fresh 64 KiB buffer per read delivered through 'data' events.
 *
 * net.Server offers `onread` only to sockets it does not create, so the accepted socket (taken
 * paused, before it has read anything) hands its handle to a new Socket made with `onread`. This
 * leans on `_handle` and the `handle` constructor option, which Node uses itself (cluster,
 * child_process) but does not document; when they are not as expected, the accepted socket is
 * served as it is, through 'data' events. See InputReader for what the direct reads buy.
 */
import { Socket } from 'node:net';
import { fsNative } from './fs-native.js';
import { logDebug } from './log.js';
import { InputReader } from './input.js';

/**
 * The socket send buffer asked for (the kernel caps it at net.core.wmem_max). Linux's default,
 * about 208 KiB, cannot hold one 256 KiB read reply, so each took two writes with a wait for
 * the socket to drain in between (256 KiB reads: 209 ms to 187 ms, warm server).
 */
const SEND_BUFFER_BYTES = 1024 * 1024;

interface HandleOwner {
  _handle?: { fd?: number } | null;
}

function enlargeSendBuffer(fd: number | undefined): void {
  if (fsNative === null || fd === undefined) return;
  try {
    fsNative.setSendBuffer(fd, SEND_BUFFER_BYTES);
  } catch (error) {
    logDebug(`cannot enlarge the socket send buffer: ${(error as Error).message}`);
  }
}

/** A taken-over socket, its reader, and its descriptor (for sendfile) when Node exposes it. */
export interface TakenOver {
  socket: Socket;
  reader: InputReader;
  fd: number | undefined;
}

/** The socket to serve and its reader, or undefined when the handle cannot be taken over. */
export function takeOverWithDirectReads(accepted: Socket): TakenOver | undefined {
  const owner = accepted as unknown as HandleOwner;
  const handle = owner._handle;
  if (handle === null || typeof handle !== 'object' || accepted.destroyed) return undefined;
  const reader = new InputReader();
  const socket = new Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: () => reader.nextReadBuffer(),
      callback: (n: number) => reader.received(n),
    },
  } as ConstructorParameters<typeof Socket>[0]);
  // The old object must not close the handle it no longer owns when it is destroyed; destroying
  // it also settles the server's connection count, which counted it.
  owner._handle = null;
  accepted.destroy();
  const fd = typeof handle.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
  reader.attachDirect(socket, fd);
  enlargeSendBuffer(fd);
  return { socket, reader, fd };
}
