import { nobleCrypto } from '../../protocol/index.js';
import { serveJson } from '../../host-sim/xs/guest/serve.js';
import { macCases, runProtocolCases } from '../protocol-cases.js';

declare const performance: { now(): number };
// { iterations }: every case timed; { meterCase, loops }: one MAC case run `loops` times, for the compute meter.
serveJson((req: { iterations?: number; meterCase?: string; loops?: number }) => {
  if (req.meterCase !== undefined) {
    const c = macCases(nobleCrypto).find(([n]) => n === req.meterCase);
    if (c === undefined) throw new Error(`no case ${req.meterCase}`);
    for (let i = 0; i < (req.loops ?? 0); i++) c[1]();
    return req.loops ?? 0;
  }
  return runProtocolCases(nobleCrypto, () => performance.now(), req.iterations ?? 0);
});
