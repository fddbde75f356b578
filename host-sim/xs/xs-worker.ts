// Runs a script inside Moddable's XS engine: the `xsnap-worker` binary that
// the npm package @agoric/xsnap builds from source during `npm install`.
// We speak the worker's netstring protocol directly (fd 3 to the worker,
// fd 4 back) instead of using the package's Node API, which needs a SES
// realm in the calling process.
//
// Protocol (xsnap-worker.c): we send `e<script>` to evaluate or `?<bytes>` to
// call globalThis.handleCommand(ArrayBuffer); the worker answers `.<meter
// JSON>\x01<reply bytes>` or `!<error>`, and may ask us `?<bytes>` in between
// (its global issueCommand), which we answer with `/<bytes>`.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export interface XsMeter {
  /** Deterministic XS compute meter for the command (instructions-like units). */
  readonly compute: number;
  readonly allocate: number;
  readonly currentHeapCount: number;
}

export interface XsReply {
  readonly reply: Uint8Array;
  readonly meter: XsMeter;
}

export interface XsWorkerOptions {
  /** Shown in errors. */
  readonly name?: string;
  /** Answers the worker's issueCommand(ArrayBuffer) calls. */
  readonly onQuery?: (request: Uint8Array) => Uint8Array;
  /** Per-command compute limit; 0 = unlimited. */
  readonly meteringLimit?: number;
  /** Parser buffer, kB (largest script the worker accepts). */
  readonly parserBufferKb?: number;
  /** Where the worker's print() output goes. */
  readonly onPrint?: (line: string) => void;
}

const require = createRequire(import.meta.url);

/** Path of the xsnap-worker binary, or an Error that says how to get it. */
export function findXsEngine(): string | Error {
  let pkg: string;
  try {
    pkg = require.resolve('@agoric/xsnap/package.json');
  } catch {
    return new Error('XS engine missing: the npm package @agoric/xsnap is not installed. Run `npm install` (or `npm ci`) in the project root.');
  }
  const platform = process.platform === 'linux' ? 'lin' : process.platform === 'darwin' ? 'mac' : null;
  if (platform === null) return new Error(`XS engine: @agoric/xsnap builds only on Linux and macOS, not on ${process.platform}.`);
  const bin = join(dirname(pkg), 'xsnap-native', 'xsnap', 'build', 'bin', platform, 'release', 'xsnap-worker');
  if (!existsSync(bin)) {
    return new Error(
      `XS engine missing: ${bin} was not built. @agoric/xsnap compiles XS from source in its postinstall step; ` +
        'it needs make and a C compiler (apt-get install -y build-essential). Rebuild it with `npm rebuild @agoric/xsnap`.',
    );
  }
  return bin;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class XsWorker {
  readonly name: string;
  readonly #proc: ChildProcess;
  readonly #toWorker: Writable;
  readonly #onQuery: (request: Uint8Array) => Uint8Array;
  #inbox: Buffer = Buffer.alloc(0);
  #pending: { resolve: (r: XsReply) => void; reject: (e: Error) => void } | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #exited: Error | null = null;
  #stderr = '';

  private constructor(bin: string, options: XsWorkerOptions) {
    this.name = options.name ?? 'xs';
    this.#onQuery = options.onQuery ?? ((r) => r);
    const args = [this.name.replace(/^-+/, '_')];
    if (options.meteringLimit !== undefined && options.meteringLimit > 0) args.push('-l', String(options.meteringLimit));
    args.push('-s', String(options.parserBufferKb ?? 32768));
    this.#proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
    this.#toWorker = this.#proc.stdio[3] as Writable;
    const fromWorker = this.#proc.stdio[4] as Readable;
    const onPrint = options.onPrint;
    (this.#proc.stdout as Readable).on('data', (d: Buffer) => {
      if (onPrint !== undefined) for (const line of d.toString('utf8').split('\n')) if (line !== '') onPrint(line);
    });
    (this.#proc.stderr as Readable).on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString('utf8')).slice(-4000);
    });
    fromWorker.on('data', (d: Buffer) => this.#receive(d));
    this.#toWorker.on('error', () => {}); // reported through 'exit'
    this.#proc.on('exit', (code, signal) => {
      this.#exited = new Error(`XS worker '${this.name}' exited (${signal ?? `code ${code}`})${this.#stderr ? `: ${this.#stderr.trim()}` : ''}`);
      const p = this.#pending;
      this.#pending = null;
      p?.reject(this.#exited);
    });
  }

  /** Starts a worker; rejects with instructions if the engine is not built. */
  static start(options: XsWorkerOptions = {}): Promise<XsWorker> {
    const bin = findXsEngine();
    if (bin instanceof Error) return Promise.reject(bin);
    return Promise.resolve(new XsWorker(bin, options));
  }

  /** Evaluates a script (global scope). Its completion value is ignored unless it is an ArrayBuffer. */
  evaluate(script: string): Promise<XsReply> {
    return this.#send(Buffer.concat([Buffer.from('e'), Buffer.from(script, 'utf8')]));
  }

  /** Calls globalThis.handleCommand(ArrayBuffer) in the worker; resolves with the ArrayBuffer it returns. */
  command(request: Uint8Array): Promise<XsReply> {
    return this.#send(Buffer.concat([Buffer.from('?'), request]));
  }

  /** JSON in, JSON out, over command(). */
  async call<T = unknown>(request: unknown): Promise<{ value: T; meter: XsMeter }> {
    const r = await this.command(enc.encode(JSON.stringify(request)));
    return { value: JSON.parse(dec.decode(r.reply)) as T, meter: r.meter };
  }

  /** Kills the worker (a power cut, for the simulator) and waits for it to go. */
  async close(): Promise<void> {
    if (this.#exited !== null) return;
    const gone = new Promise<void>((resolve) => this.#proc.once('exit', () => resolve()));
    this.#proc.kill('SIGKILL');
    await gone;
  }

  #send(message: Buffer): Promise<XsReply> {
    const run = this.#queue.then(
      () =>
        new Promise<XsReply>((resolve, reject) => {
          if (this.#exited !== null) return reject(this.#exited);
          this.#pending = { resolve, reject };
          this.#writeNetstring(message);
        }),
    );
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #writeNetstring(payload: Buffer): void {
    this.#toWorker.write(Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(',')]));
  }

  #receive(data: Buffer): void {
    this.#inbox = this.#inbox.length === 0 ? data : Buffer.concat([this.#inbox, data]);
    for (;;) {
      const colon = this.#inbox.indexOf(0x3a);
      if (colon < 0) return;
      const len = Number(this.#inbox.subarray(0, colon).toString('ascii'));
      if (!Number.isInteger(len) || len < 0) return this.#protocolError('bad netstring length');
      if (this.#inbox.length < colon + 1 + len + 1) return;
      const msg = this.#inbox.subarray(colon + 1, colon + 1 + len);
      if (this.#inbox[colon + 1 + len] !== 0x2c) return this.#protocolError('bad netstring trailer');
      this.#inbox = this.#inbox.subarray(colon + 2 + len);
      this.#dispatch(Buffer.from(msg));
    }
  }

  #dispatch(msg: Buffer): void {
    const kind = msg[0];
    if (kind === 0x3f /* ? */) {
      let answer: Uint8Array;
      try {
        answer = this.#onQuery(new Uint8Array(msg.subarray(1)));
      } catch (e) {
        answer = enc.encode(JSON.stringify({ hostError: String(e) }));
      }
      this.#writeNetstring(Buffer.concat([Buffer.from('/'), answer]));
      return;
    }
    const p = this.#pending;
    this.#pending = null;
    if (p === null) return this.#protocolError('reply without a request');
    if (kind === 0x2e /* . */) {
      const sep = msg.indexOf(1, 1);
      const meterJson = sep < 0 ? '{}' : msg.subarray(1, sep).toString('utf8');
      const meter = JSON.parse(meterJson) as Partial<XsMeter>;
      p.resolve({
        reply: new Uint8Array(msg.subarray(sep < 0 ? 1 : sep + 1)),
        meter: { compute: meter.compute ?? 0, allocate: meter.allocate ?? 0, currentHeapCount: meter.currentHeapCount ?? 0 },
      });
    } else if (kind === 0x21 /* ! */) {
      p.reject(new Error(`uncaught exception in XS worker '${this.name}': ${msg.subarray(1).toString('utf8')}`));
    } else {
      p.reject(new Error(`XS worker '${this.name}': unknown reply '${String.fromCharCode(kind ?? 0)}'`));
    }
  }

  #protocolError(what: string): void {
    this.#proc.kill('SIGKILL');
    const p = this.#pending;
    this.#pending = null;
    p?.reject(new Error(`XS worker '${this.name}': protocol error: ${what}`));
  }
}
