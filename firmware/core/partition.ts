// How one data partition is divided. The same layout on the device (the
// `data` partition of manifest.json) and in the simulator (a NorFlash file).
//
//   slotA | slotB | state | overlay | passback | gate state | journal
//
// 250k credentials on an 8 MiB partition (4 KiB blocks): slots 2 x 3.0 MB,
// state 8 KiB, overlay 128 KiB, passback 128 KiB, gate state 8 KiB,
// journal 1.6 MiB (400 sectors, >= 100,000 events): 7.9 MB in all.

import type { BlockStore } from '../ports.js';
import { CRED_BYTES } from '../../protocol/whitelist-format.js';
import { Region } from './region.js';

export interface LayoutOptions {
  /** Credentials each slot must hold. */
  readonly credentials: number;
  /** Room for grants, institutions, industries, schedules and the header. */
  readonly sideTableBytes?: number;
  readonly overlayBlocks?: number;
  readonly passbackBlocks?: number;
  readonly journalSectors?: number;
}

export interface Partition {
  readonly slotA: Region;
  readonly slotB: Region;
  readonly state: Region;
  readonly overlay: Region;
  readonly passback: Region;
  readonly gateState: Region;
  readonly journal: Region;
  readonly usedBytes: number;
}

export function partitionBytes(o: LayoutOptions, blockSize = 4096): number {
  const slot = Math.ceil((o.credentials * CRED_BYTES + (o.sideTableBytes ?? 64 * 1024)) / blockSize);
  return (2 * slot + 2 + (o.overlayBlocks ?? 32) + (o.passbackBlocks ?? 32) + 2 + (o.journalSectors ?? 400)) * blockSize;
}

export function layoutPartition(flash: BlockStore, o: LayoutOptions): Partition {
  const bs = flash.blockSize;
  const need = partitionBytes(o, bs);
  if (need > flash.size) throw new Error(`partition of ${flash.size} bytes is too small for ${o.credentials} credentials: needs ${need}`);
  const slotBlocks = Math.ceil((o.credentials * CRED_BYTES + (o.sideTableBytes ?? 64 * 1024)) / bs);
  let at = 0;
  const take = (blocks: number, name: string) => {
    const r = new Region(flash, at * bs, blocks * bs, name);
    at += blocks;
    return r;
  };
  return {
    slotA: take(slotBlocks, 'slotA'),
    slotB: take(slotBlocks, 'slotB'),
    state: take(2, 'state'),
    overlay: take(o.overlayBlocks ?? 32, 'overlay'),
    passback: take(o.passbackBlocks ?? 32, 'passback'),
    gateState: take(2, 'gateState'),
    journal: take(o.journalSectors ?? 400, 'journal'),
    usedBytes: need,
  };
}
