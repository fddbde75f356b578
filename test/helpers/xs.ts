// Test helper: bundle a device-side entry (esbuild) and run it in the real XS
// engine. A missing engine is a test failure with instructions, never a skip.

import { fileURLToPath } from 'node:url';
import { bundleForXs } from '../../host-sim/xs/bundle.js';
import { XsWorker, type XsMeter } from '../../host-sim/xs/xs-worker.js';

export interface XsRunner {
  call<T>(request: unknown): Promise<{ value: T; meter: XsMeter }>;
  close(): Promise<void>;
}

/** Starts an XS worker with the bundled entry (a path relative to test/xs/, or a file URL). */
export async function startXs(entry: string | URL): Promise<XsRunner> {
  const path = entry instanceof URL ? fileURLToPath(entry) : fileURLToPath(new URL(`../xs/${entry}`, import.meta.url));
  const script = await bundleForXs(path);
  const worker = await XsWorker.start({ name: String(entry).replace(/\W+/g, '_').slice(-40), onPrint: (l) => console.log(`[xs] ${l}`) });
  await worker.evaluate(script);
  return {
    async call<T>(request: unknown) {
      const r = await worker.call<{ ok: true; value: T } | { ok: false; error: string }>(request);
      if (!r.value.ok) throw new Error(`XS handler threw: ${r.value.error}`);
      return { value: r.value.value, meter: r.meter };
    },
    close: () => worker.close(),
  };
}
