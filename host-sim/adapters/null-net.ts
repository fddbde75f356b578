// A Net that never connects: for gates that run offline (lane scenarios,
// benchmarks). Runs on XS too (no Node APIs).
import type { Net } from '../../firmware/ports.js';

export class NullNet implements Net {
  connect(): void {}
  publish(): number {
    return -1;
  }
  subscribe(): void {}
  disconnect(): void {}
  onMessage(): void {}
  onPublished(): void {}
  onConnectionChange(): void {}
}
