// npm run bench -- protocol : message decode and signature check, node and xs.
import { nobleCrypto } from '../protocol/index.js';
import { startXs } from '../test/helpers/xs.js';
import { BenchReport, percentile } from './lib.js';
import { macCases, runProtocolCases, type CaseTimes } from './protocol-cases.js';
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
    // XS's deterministic compute meter per MAC (a loop of 20 minus a loop of 0): repeatable whatever the machine's load.
    for (const [name] of macCases(nobleCrypto)) {
      const m20 = (await xs.call<number>({ meterCase: name, loops: 20 })).meter.compute;
      const m0 = (await xs.call<number>({ meterCase: name, loops: 0 })).meter.compute;
      report.add({ metric: `${name}_xs_meter`, value: Math.round((m20 - m0) / 20), unit: 'xs-meter', engine: 'xs', entries: 0, note: 'XS compute meter units per operation (pure-JS SHA-256 on xsnap; the device uses the native Digest: bench/results/sdk.json)' });
    }
  } finally {
    await xs.close();
  }
  return report.write();
}

const round = (x: number) => Math.round(x * 10) / 10;
