/**
 * Blocking network calls for Python, answered by a worker thread (socket-worker.ts).
 *
 * Python runs on the server's main thread inside pyodide, whose own sockets cannot block under
 * Node 20 (that needs WebAssembly stack switching, behind a flag there and slow: see the README's
 * "Python and the network"). CPython's socket calls block the calling thread, and scripts are
 * written for that. So a call here posts the request to the worker and waits on a shared word
 * (Atomics.wait) until the worker, whose event loop does the I/O with Node's `net` and `tls`,
 * answers; the answer is then taken off the channel synchronously (receiveMessageOnPort).
 *
 * The worker starts on the first network call, so plugins that never touch the network pay
 * nothing for it.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { PyProxy } from 'pyodide/ffi';
import type { SocketReply, SocketRequest } from './socket-protocol.js';
import { socketWorkerMain } from './socket-worker.js';

export class SocketBridge {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  /** What the last call received, until Python takes it (takeData). */
  private received: Uint8Array = new Uint8Array(0);

  /**
   * A call from Python's socket layer: the request as JSON and the bytes to send (a Python
   * buffer), the reply as JSON. Bytes received are not in the JSON: the reply says how many,
   * and takeData hands them over.
   */
  callFromPython(json: string, data: PyProxy | undefined): string {
    const request = JSON.parse(json) as SocketRequest;
    if (data !== undefined) {
      const buffer = data.getBuffer('u8');
      try {
        request.data = (buffer.data as Uint8Array).slice();
      } finally {
        buffer.release();
      }
    }
    const reply = this.call(request);
    if (reply.data) {
      this.received = reply.data;
      const { data: _bytes, ...rest } = reply;
      return JSON.stringify({ ...rest, size: _bytes.length });
    }
    return JSON.stringify(reply);
  }

  takeData(): Uint8Array {
    const data = this.received;
    this.received = new Uint8Array(0);
    return data;
  }

  private start(): MessagePort {
    if (this.port) return this.port;
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(`(${socketWorkerMain.toString()})(require)`, {
      eval: true,
      workerData: { signal: this.signal.buffer, port: port2 },
      transferList: [port2],
      stdout: false,
      stderr: false,
    });
    // Neither keeps the server alive: it exits when its own work is done.
    worker.unref();
    port1.unref();
    this.worker = worker;
    this.port = port1;
    return port1;
  }

  /** One request, answered before this returns. */
  call(request: SocketRequest): SocketReply {
    const port = this.start();
    Atomics.store(this.signal, 0, 0);
    port.postMessage(request);
    // Woken when the answer is queued, or when the worker exits (it raises the flag as it goes):
    // the worker answers every request, timeouts included, with its own timers.
    Atomics.wait(this.signal, 0, 0);
    const message = receiveMessageOnPort(port);
    return message ? (message.message as SocketReply) : this.lost();
  }

  private lost(): SocketReply {
    void this.worker?.terminate();
    this.worker = undefined;
    this.port = undefined;
    return { error: 'EIO', message: 'the network thread of nbdkit-ts stopped' };
  }
}
