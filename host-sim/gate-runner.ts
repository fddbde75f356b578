// Node only: one gate run as a process (`subline gate run`): a NodeGate (the
// firmware core, unchanged) on the flash of a GateFlashDir, taking credential
// reads and passages from its caller, with what an operator watches: the
// connection, the list version, the journal backlog, and per run the taps,
// their decisions and the records journaled.

import type { BootReport } from '../firmware/core/gate.js';
import type { CredentialKind } from '../firmware/ports.js';
import { EventType, GrantLevel, type EventRecord } from '../protocol/event-record.js';
import type { ProvisioningRecord } from '../protocol/provisioning.js';
import { Reason, reasonName, type ReasonName } from '../protocol/reasons.js';
import type { BrokerAuth } from './broker-auth.js';
import type { GateFlashDir } from './gate-flash-dir.js';
import { nodeCrypto } from './node-crypto.js';
import { NodeGate } from './node-gate.js';

export type GrantLevelName = keyof typeof GrantLevel;
const LEVELS: readonly GrantLevelName[] = (() => {
  const names: GrantLevelName[] = [];
  for (const [name, code] of Object.entries(GrantLevel)) names[code] = name as GrantLevelName;
  return names;
})();

export interface GateRunnerOptions {
  readonly record: ProvisioningRecord;
  readonly flash: GateFlashDir;
  /** Default: the record's broker. */
  readonly brokerUrl?: string;
  /** Default: the record's identity (its TLS client certificate, or username and password). */
  readonly brokerAuth?: BrokerAuth;
  /** fdatasync of the flash files this often (ms; default 1000). */
  readonly syncEveryMs?: number;
  /** A decision was journaled (or refused for a full journal): a tap, or a tag of a goods lot when the lot closes. */
  readonly onDecision?: (d: TapDecision) => void;
  /** The connection or the whitelist changed. */
  readonly onChange?: () => void;
}

export interface TapDecision {
  readonly granted: boolean;
  readonly reason: ReasonName | 'unknown';
  /** The grant level that decided it (none for most denials). */
  readonly level: GrantLevelName;
  /** Journal seq of its record (null: the journal is full, nothing was recorded and nobody passes). */
  readonly seq: number | null;
}

export type Connection = 'connecting' | 'online' | 'offline';

export interface GateRunStatus {
  readonly gate: string;
  readonly broker: string;
  readonly connection: Connection;
  /** Ever connected in this run (offline then means the connection was lost, not never made). */
  readonly everOnline: boolean;
  /** The whitelist version on flash (null: none yet). */
  readonly list: number | null;
  /** An image is being pulled. */
  readonly pulling: boolean;
  readonly epoch: number;
  readonly lastSeq: number;
  /** Journaled and not yet acknowledged by the central. */
  readonly pending: number;
}

export interface GateRunTotals {
  readonly taps: number;
  readonly granted: number;
  readonly denied: number;
  /** Records this run added to the journal (its boot record, decisions, passages, alarms, commands). */
  readonly journaled: number;
  readonly denials: Readonly<Record<string, number>>;
  readonly passages: number;
}

export class GateRunner {
  readonly node: NodeGate;
  readonly boot: BootReport;
  readonly broker: string;
  readonly #o: GateRunnerOptions;
  readonly #syncTimer: ReturnType<typeof setInterval>;
  #journaled = 0;
  #everOnline = false;
  #sawDown = false;
  #closed = false;

  constructor(o: GateRunnerOptions) {
    this.#o = o;
    this.broker = o.brokerUrl ?? o.record.broker;
    this.node = new NodeGate({
      provisioning: o.record,
      crypto: nodeCrypto,
      layout: o.flash.layout,
      flash: o.flash.data,
      provisioningFlash: o.flash.provisioning,
      brokerUrl: this.broker,
      ...(o.brokerAuth !== undefined ? { brokerAuth: o.brokerAuth } : {}),
      onSyncChange: () => this.#syncChanged(),
    });
    this.#watchJournal();
    this.boot = this.node.start();
    this.#syncTimer = setInterval(() => o.flash.sync(), o.syncEveryMs ?? 1000);
  }

  /** One credential read at the reader, decided at once (a goods portal decides its lot when the lot's window closes). */
  read(kind: CredentialKind, id: Uint8Array): void {
    this.node.gate.onRead({ kind, id, atMs: performance.now() });
  }

  /** The subject passes: a turnstile rotation (person, goods), or the vehicle on the loop and off it again. */
  pass(): void {
    const inputs = this.node.inputs;
    if (this.node.gate.config.lane === 'vehicle') {
      inputs.set('presence', true);
      inputs.set('presence', false);
    } else inputs.pulse('rotation');
  }

  get status(): GateRunStatus {
    const g = this.node.gate;
    const connected = g.sync.connected;
    return {
      gate: g.id,
      broker: this.broker,
      connection: connected ? 'online' : this.#sawDown ? 'offline' : 'connecting',
      everOnline: this.#everOnline,
      list: g.store.activeSlot < 0 ? null : g.store.version,
      pulling: g.sync.pulling,
      epoch: g.journal.epoch,
      lastSeq: g.journal.lastSeq,
      pending: g.journal.backlog,
    };
  }

  get totals(): GateRunTotals {
    const s = this.node.gate.controller.stats;
    const denials: Record<string, number> = {};
    s.byReason.forEach((n, code) => {
      if (code !== Reason.granted && n > 0) denials[reasonName(code)] = n;
    });
    return { taps: s.taps, granted: s.granted, denied: s.denied, journaled: this.#journaled, denials, passages: s.passages };
  }

  /**
   * Waits until the central has acknowledged every journaled event, the
   * connection is down, or timeoutMs passed; true when nothing is pending.
   * What is left stays in the journal and goes on the next run.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    const j = this.node.gate.journal;
    while (j.backlog > 0 && this.node.gate.sync.connected && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    return j.backlog === 0;
  }

  /** Stops the gate (its connection ends with its will: offline) and closes the flash. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#syncTimer);
    this.node.stop();
    this.#o.flash.close();
  }

  #syncChanged(): void {
    if (this.node.gate.sync.connected) this.#everOnline = true;
    else this.#sawDown = true;
    this.#o.onChange?.();
  }

  /**
   * Every record this run journals, its boot record included. NodeGate does not
   * pass the Gate's onEvent through, and the boot record is written before any
   * callback could be set, so the journal's append is observed itself, before
   * the gate opens. Observation only: the record and the seq are passed on unchanged.
   */
  #watchJournal(): void {
    const journal = this.node.gate.journal;
    const append = journal.append.bind(journal);
    journal.append = (r: EventRecord): number | 'full' => {
      const seq = append(r);
      if (seq !== 'full') this.#journaled++;
      if (r.type === EventType.decision_granted || r.type === EventType.decision_denied) {
        // Not journaled: the controller refuses it (no pass without a record), whatever was decided.
        if (seq === 'full') this.#o.onDecision?.({ granted: false, reason: 'journal_full', level: 'none', seq: null });
        else this.#o.onDecision?.({ granted: r.type === EventType.decision_granted, reason: reasonName(r.reason), level: LEVELS[r.level] ?? 'none', seq });
      }
      return seq;
    };
  }
}
