// npm run bench -- protocol : message decode and signature check, node and xs.
import { nobleCrypto } from '../protocol/index.js';
import { startXs } from '../test/helpers/xs.js';
import { BenchReport, percentile } from './lib.js';
import { runProtocolCases, type CaseTimes } from './protocol-cases.js';
import { performance } from 'node:perf_hooks';

export async function benchProtocol(): Promise<string> {
  const report = new BenchReport('protocol');
  const emit = (engine: 'node' | 'xs', times: CaseTimes[]) => {
    for (const c of times) {
      report.add({ metric: `${c.name}_us_p50`, value: round(percentile(c.samplesUs, 50)), unit: 'us', engine, entries: 0, samples: c.samplesUs.length });
      report.add({ metric: `${c.name}_us_p99`, value: round(percentile(c.samplesUs, 99)), unit: 'us', engine, entries: 0, samples: c.samplesUs.length });
    }
  };
  emit('node', runProtocolCases(nobleCrypto, () => performance.now(), 2000));
  const xs = await startXs(new URL('./xs/protocol.entry.ts', import.meta.url));
  try {
    emit('xs', (await xs.call<CaseTimes[]>({ iterations: 2000 })).value);
  } finally {
    await xs.close();
  }
  return report.write();
}

const round = (x: number) => Math.round(x * 10) / 10;
