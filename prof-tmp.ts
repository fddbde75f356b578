import { runSimulation } from './host-sim/simulation/simulation.ts';
const r = await runSimulation({ seed: 1, gates: Number(process.argv[2] ?? 32), hours: Number(process.argv[3] ?? 0.25) });
console.log(r.wallMs, r.steps, r.violations.length);
