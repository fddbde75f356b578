// Runs inside the XS worker (guest side; bundled with the entry that imports it):
// worker's command channel (globalThis.handleCommand, see host-sim/xs/xs-worker.ts).

declare const globalThis: { handleCommand?: (request: ArrayBuffer) => ArrayBuffer };

export function serveJson(handler: (request: never) => unknown): void {
  const te = new TextEncoder();
  const td = new TextDecoder();
  globalThis.handleCommand = (request: ArrayBuffer): ArrayBuffer => {
    let reply: unknown;
    try {
      reply = { ok: true, value: handler(JSON.parse(td.decode(new Uint8Array(request))) as never) };
    } catch (e) {
      reply = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e) };
    }
    const bytes = te.encode(JSON.stringify(reply));
    // A buffer that is exactly the reply (the encoder's may be larger).
    const out = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(out).set(bytes);
    return out;
  };
}
