// The DNS "io" the ECMA-419 MQTT client calls: `new options.dns.io(options.dns)`
// then `resolve({ host, onResolved(host, address), onError(host) })`
// (examples/io/tcp/mqttclient/mqttclient.js, constructor). The SDK's own
// resolver (examples/io/udp/dns) needs a fixed list of DNS servers; this one
// uses lwIP's resolver through Moddable's `net` module (Net.resolve), which
// uses the servers DHCP gave. Dotted IPv4 literals are answered without a
// lookup (on the next turn, never re-entrantly).

// eslint-disable-next-line no-restricted-imports -- Moddable's "net" module (modules/network/net), not Node's
import Net from 'net';
import Timer from 'timer';

export interface NetResolverOptions {
  /** Fails a lookup that has not answered within this (default 10 s). */
  readonly timeoutMs?: number;
}

export interface ResolveRequest {
  readonly host: string;
  readonly onResolved?: (host: string, address: string) => void;
  readonly onError?: (host: string) => void;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export class NetResolver {
  readonly #timeoutMs: number;
  readonly #pending = new Set<Timer>();
  #closed = false;

  constructor(options: NetResolverOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  resolve(request: ResolveRequest): void {
    if (this.#closed) throw new Error('resolver closed');
    const host = request.host;
    let done = false;
    const finish = (address: string | undefined): void => {
      if (done || this.#closed) return;
      done = true;
      Timer.clear(timeout);
      this.#pending.delete(timeout);
      if (address !== undefined && address !== '') request.onResolved?.(host, address);
      else request.onError?.(host);
    };
    const timeout = Timer.set(() => finish(undefined), this.#timeoutMs);
    this.#pending.add(timeout);
    if (IPV4.test(host)) {
      const t = Timer.set(() => {
        this.#pending.delete(t);
        finish(host);
      }, 0);
      this.#pending.add(t);
      return;
    }
    try {
      Net.resolve(host, (_name, address) => finish(address));
    } catch {
      // the lwIP lookup queue is full: fail on the next turn
      const t = Timer.set(() => {
        this.#pending.delete(t);
        finish(undefined);
      }, 0);
      this.#pending.add(t);
    }
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#pending) Timer.clear(t);
    this.#pending.clear();
  }
}
