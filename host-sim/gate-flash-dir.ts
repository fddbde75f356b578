// Node only: the directory that holds one host gate's flash across runs
// (`subline gate run --flash DIR`), as a device keeps its flash across power
// cuts:
//   data.flash       the data partition (whitelist slots, overlay, journal, ...)
//   provision.flash  the provisioning partition: the framed record and the
//                    format counter behind the journal epoch
//   gate.json        which gate and which layout; written last, so a
//                    directory without it never ran a gate
//   lock             the pid of the process using it
// Both flashes are FileBackedFlash: every write is in the file before the
// firmware goes on, so a kill -9 is a power cut and nothing more.
//
// A directory is bound to the record that made it. Another gate's directory,
// or this gate's from another provisioning (a new key id or journal epoch:
// its unsent events belong to the old one), is refused and left as it is:
// formatting it would drop events the central has not seen.

import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { partitionBytes, type LayoutOptions } from '../firmware/core/partition.js';
import { readProvisioningImage } from '../firmware/moddable/provisioning-image.js';
import { bytesEqual } from '../protocol/hex.js';
import { encodeProvisioning, type ProvisioningRecord } from '../protocol/provisioning.js';
import { writeFileAtomic } from './atomic-file.js';
import { FileBackedFlash, FileBackedFlashError } from './flash/file-backed-flash.js';
import { NodeGate } from './node-gate.js';

const FORMAT = 1;
const FILES = { data: 'data.flash', provisioning: 'provision.flash', meta: 'gate.json', lock: 'lock' } as const;
/** Journal sectors of a host gate: the device's default (about 100,000 events offline). */
export const JOURNAL_SECTORS = 400;
export const DEFAULT_CAPACITY = 20000;

export type GateFlashDirErrorCode = 'not_a_directory' | 'not_ours' | 'foreign' | 'reprovisioned' | 'layout' | 'damaged' | 'in_use';

export class GateFlashDirError extends Error {
  constructor(
    message: string,
    readonly code: GateFlashDirErrorCode,
  ) {
    super(message);
    this.name = 'GateFlashDirError';
  }
}

interface Meta {
  format: number;
  gate: string;
  gateKeyId: number;
  journalEpoch: number;
  layout: { credentials: number; journalSectors: number };
  created: string;
}

export interface GateFlashDirOptions {
  readonly dir: string;
  readonly record: ProvisioningRecord;
  /** Credentials a new directory's whitelist slots hold (default 20,000); for an existing one it must match, when given. */
  readonly capacity?: number;
}

export class GateFlashDir {
  readonly dir: string;
  readonly layout: LayoutOptions;
  readonly data: FileBackedFlash;
  readonly provisioning: FileBackedFlash;
  /** True when this run made the directory (the gate's first boot). */
  readonly created: boolean;
  #closed = false;

  private constructor(dir: string, layout: LayoutOptions, data: FileBackedFlash, provisioning: FileBackedFlash, created: boolean) {
    this.dir = dir;
    this.layout = layout;
    this.data = data;
    this.provisioning = provisioning;
    this.created = created;
  }

  /** Opens (or makes) the directory for `record`'s gate; throws GateFlashDirError, changing nothing, when it may not. */
  static open(o: GateFlashDirOptions): GateFlashDir {
    const { dir, record } = o;
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new GateFlashDirError(`--flash ${dir} is not a directory`, 'not_a_directory');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lock = join(dir, FILES.lock);
    takeLock(lock, dir);
    try {
      const existing = existsSync(join(dir, FILES.meta));
      if (!existing) checkEmpty(dir);
      return existing ? GateFlashDir.#reopen(dir, record, o.capacity) : GateFlashDir.#make(dir, record, o.capacity ?? DEFAULT_CAPACITY);
    } catch (e) {
      rmSync(lock, { force: true });
      throw e;
    }
  }

  static #make(dir: string, record: ProvisioningRecord, capacity: number): GateFlashDir {
    const layout = { credentials: capacity, journalSectors: JOURNAL_SECTORS };
    const data = join(dir, FILES.data);
    const prov = join(dir, FILES.provisioning);
    FileBackedFlash.create(data, new Uint8Array(partitionBytes(layout)).fill(0xff));
    FileBackedFlash.create(prov, NodeGate.provisioningPartition(record).snapshot());
    const meta: Meta = { format: FORMAT, gate: record.gate, gateKeyId: record.gateKeyId, journalEpoch: record.journalEpoch, layout, created: new Date().toISOString() };
    // Last: only now is this a gate's directory.
    writeFileAtomic(join(dir, FILES.meta), new TextEncoder().encode(`${JSON.stringify(meta, null, 2)}\n`), { mode: 0o600 });
    return new GateFlashDir(dir, layout, FileBackedFlash.open(data), FileBackedFlash.open(prov), true);
  }

  static #reopen(dir: string, record: ProvisioningRecord, capacity: number | undefined): GateFlashDir {
    const metaFile = join(dir, FILES.meta);
    let meta: Meta;
    try {
      meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Meta;
    } catch (e) {
      throw new GateFlashDirError(`${metaFile}: not readable JSON (${e instanceof Error ? e.message : String(e)}); refused, nothing changed`, 'damaged');
    }
    const m = meta as Partial<Meta> | null;
    if (typeof m !== 'object' || m === null || m.format !== FORMAT || typeof m.gate !== 'string' || typeof m.layout?.credentials !== 'number' || typeof m.layout.journalSectors !== 'number') {
      throw new GateFlashDirError(`${metaFile}: not a gate directory of this build (format ${String(m?.format)}); refused, nothing changed`, 'damaged');
    }
    if (meta.gate !== record.gate) {
      throw new GateFlashDirError(`--flash ${dir} holds the flash of gate ${meta.gate}, not of ${record.gate} (this record): refused, nothing changed; give gate ${record.gate} a directory of its own`, 'foreign');
    }
    if (capacity !== undefined && capacity !== meta.layout.credentials) {
      throw new GateFlashDirError(`--flash ${dir} was made for ${meta.layout.credentials} credentials; --capacity ${capacity} applies only to a new directory`, 'layout');
    }
    const layout = { credentials: meta.layout.credentials, journalSectors: meta.layout.journalSectors };
    const prov = openFlash(join(dir, FILES.provisioning));
    try {
      const img = readProvisioningImage((offset, length) => prov.read(offset, length), prov.size);
      if (!img.ok) throw new GateFlashDirError(`${prov.path}: no usable provisioning record (${img.error}: ${img.detail}); refused, nothing changed`, 'damaged');
      if (img.value.gate !== record.gate) throw new GateFlashDirError(`--flash ${dir} holds the flash of gate ${img.value.gate}, not of ${record.gate} (this record): refused, nothing changed`, 'foreign');
      if (!bytesEqual(encodeProvisioning(img.value), encodeProvisioning(record))) {
        throw new GateFlashDirError(
          `--flash ${dir} holds gate ${record.gate}'s flash from another provisioning record (key id ${img.value.gateKeyId}, journal epoch ${img.value.journalEpoch}; this record: key id ${record.gateKeyId}, epoch ${record.journalEpoch}): refused, nothing changed. Run it with the record it was made with (its unsent events are there), or give the new record a new directory`,
          'reprovisioned',
        );
      }
      const data = openFlash(join(dir, FILES.data));
      if (data.size !== partitionBytes(layout)) {
        data.close();
        throw new GateFlashDirError(`${data.path}: ${data.size} bytes, the layout in ${metaFile} needs ${partitionBytes(layout)}; refused, nothing changed`, 'damaged');
      }
      return new GateFlashDir(dir, layout, data, prov, false);
    } catch (e) {
      prov.close();
      throw e;
    }
  }

  /** fdatasync of both flashes (what a kill -9 does not need, a host crash does). */
  sync(): void {
    if (this.#closed) return;
    this.data.sync();
    this.provisioning.sync();
  }

  /** Syncs, closes the files and releases the lock. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.data.close();
    this.provisioning.close();
    rmSync(join(this.dir, FILES.lock), { force: true });
  }
}

function openFlash(path: string): FileBackedFlash {
  try {
    return FileBackedFlash.open(path);
  } catch (e) {
    if (e instanceof FileBackedFlashError) throw new GateFlashDirError(`${e.message}; refused, nothing changed`, 'damaged');
    throw e;
  }
}

/** A directory without gate.json may hold only what an interrupted first run left (never a gate that ran). */
function checkEmpty(dir: string): void {
  const ours = new Set<string>([FILES.data, FILES.provisioning, FILES.lock]);
  const other = readdirSync(dir).filter((n) => !ours.has(n) && !(n.startsWith('.') && n.endsWith('.tmp')));
  if (other.length > 0) throw new GateFlashDirError(`--flash ${dir} is not empty and holds no gate flash (${other.slice(0, 3).join(', ')}${other.length > 3 ? ', ...' : ''}): refused, nothing changed; give a new or empty directory`, 'not_ours');
}

/** One process per directory: the lock file holds its pid; a lock whose process is gone (kill -9) is taken over. */
function takeLock(lock: string, dir: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number.parseInt(readFileSync(lock, 'utf8').trim(), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) throw new GateFlashDirError(`--flash ${dir} is in use by process ${pid} (one gate process per directory)`, 'in_use');
    // No pid yet: another process made the lock an instant ago and is writing it.
    if (!Number.isSafeInteger(pid) && Date.now() - statSync(lock).mtimeMs < 5000) break;
    rmSync(lock, { force: true });
  }
  throw new GateFlashDirError(`--flash ${dir}: its lock is being taken by another process at the same time`, 'in_use');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
