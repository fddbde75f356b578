// What one simulated gate made durable, whatever engine runs it (SimGate on
// Node, SimXsGate on XS): every journal record read back from flash, by
// epoch then seq, and what a wipe legitimately destroyed. The checker
// compares the central's store with it ("nothing forged is ever stored",
// "every journaled event is stored").

/** The records a gate made durable, by epoch then seq (hex of the 16 bytes). */
export type JournaledRecords = Map<number, Map<number, string>>;

export class JournalWatch {
  /** Every record seen durable on flash. */
  readonly journaled: JournaledRecords = new Map();
  /** Records lost with a wipe (never acknowledged): legitimately gone. */
  lostToWipe = 0;
  /** The journal's epoch last observed (-1: none yet). */
  #epoch = -1;
  /** The journal's acknowledged seq per epoch, as last observed. */
  readonly #acked = new Map<number, number>();
  /** Per wiped epoch: its acknowledged seq when the wipe came. */
  readonly #wipedAcked = new Map<number, number>();
  /** The highest boot count seen per epoch. */
  readonly #boots = new Map<number, number>();

  /** The journal's state as the gate reports it now. */
  observe(epoch: number, acked: number, boot: number): void {
    this.#epoch = epoch;
    this.#acked.set(epoch, acked);
    if (boot > (this.#boots.get(epoch) ?? 0)) this.#boots.set(epoch, boot);
    if (!this.journaled.has(epoch)) this.journaled.set(epoch, new Map());
  }

  /** A record read back from flash; true if it is new. */
  add(epoch: number, seq: number, hex: string): boolean {
    let recs = this.journaled.get(epoch);
    if (recs === undefined) {
      recs = new Map();
      this.journaled.set(epoch, recs);
    }
    if (recs.has(seq)) return false;
    recs.set(seq, hex);
    return true;
  }

  record(epoch: number, seq: number): string | undefined {
    return this.journaled.get(epoch)?.get(seq);
  }

  /** The data partition erased: what it destroys are the records of the epoch on flash above its last acknowledgement (older epochs were wiped before, or fully acknowledged before a format). */
  wiped(): void {
    const epoch = this.#epoch;
    const acked = this.#acked.get(epoch) ?? 0;
    if (this.#wipedAcked.has(epoch)) return;
    this.#wipedAcked.set(epoch, acked);
    for (const seq of this.journaled.get(epoch)?.keys() ?? []) if (seq > acked) this.lostToWipe++;
  }

  /** Records lost to a wipe: the (epoch, seq) keys above the gate's last ack at the wipe. */
  lostAt(epoch: number, seq: number): boolean {
    const a = this.#wipedAcked.get(epoch);
    return a !== undefined && seq > a;
  }

  /** The highest boot count seen in a journal epoch (the boot counter lives on the data partition: a wipe starts it again). */
  highestBoot(epoch: number): number {
    return this.#boots.get(epoch) ?? 0;
  }
}
