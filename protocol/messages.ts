// Every message of the sync protocol (docs/PROTOCOL.md, schema.cddl). Each is
// a CBOR map with "t" (its type) and "v" (its format version). Record layouts
// inside whitelist images, deltas and event batches are opaque byte strings
// here; the firmware core owns them.

import { bytes, decodeMessage, encodeMessage, id, oneOf, opt, printable, req, uint, type MessageOf, type MessageSchema } from './schema.js';
import type { Result } from './result.js';

export const PROTOCOL_VERSION = 1;

/** Limits shared by the schemas and the firmware's buffers. */
export const LIMITS = {
  chunkBytes: 16 * 1024, // largest image chunk
  maxChunks: 2048, // largest image: 2048 x 16 KiB = 32 MiB
  deltaBytes: 16 * 1024, // records in one delta
  eventBatchBytes: 32 * 1024, // journal records in one upload batch
  eventBatchCount: 1024,
  syncWindow: 64, // most chunks or deltas asked for at once
  commandParamsBytes: 256,
  hashBytes: 32,
  nonceBytes: 16,
  maxLists: 8,
  /** Refusal causes a gate reports in its status (the most frequent). */
  maxRefusalCauses: 16,
} as const;

const line = oneOf('first', 'second');
const direction = oneOf('in', 'out');
const lane = oneOf('person', 'vehicle', 'goods');

/** Retained per list; signed. Binds the image by the SHA-256 of its chunk-hash list. */
export const Head = {
  type: 'head',
  version: PROTOCOL_VERSION,
  maxSize: 256,
  fields: {
    list: req(id()),
    epoch: req(uint()),
    version: req(uint()),
    issuedAt: req(uint()),
    expires: req(uint()),
    imageSize: req(uint(LIMITS.maxChunks * LIMITS.chunkBytes)),
    chunkSize: req(uint(LIMITS.chunkBytes, 1)),
    imageRoot: req(bytes(32, 32)),
  },
} as const satisfies MessageSchema;

/** One whitelist change set, taking `version - 1` to `version`; signed. */
export const Delta = {
  type: 'delta',
  version: PROTOCOL_VERSION,
  maxSize: LIMITS.deltaBytes + 256,
  fields: {
    list: req(id()),
    epoch: req(uint()),
    version: req(uint(undefined, 1)),
    issuedAt: req(uint()),
    records: req(bytes(1, LIMITS.deltaBytes)),
  },
} as const satisfies MessageSchema;

/** The SHA-256 of every chunk of one image, in order. */
export const Manifest = {
  type: 'manifest',
  version: PROTOCOL_VERSION,
  maxSize: LIMITS.maxChunks * LIMITS.hashBytes + 256,
  fields: {
    list: req(id()),
    epoch: req(uint()),
    version: req(uint()),
    imageSize: req(uint(LIMITS.maxChunks * LIMITS.chunkBytes)),
    chunkSize: req(uint(LIMITS.chunkBytes, 1)),
    hashes: req(bytes(32, LIMITS.maxChunks * LIMITS.hashBytes, LIMITS.hashBytes)),
  },
} as const satisfies MessageSchema;

export const Chunk = {
  type: 'chunk',
  version: PROTOCOL_VERSION,
  maxSize: LIMITS.chunkBytes + 256,
  fields: {
    list: req(id()),
    epoch: req(uint()),
    version: req(uint()),
    index: req(uint(LIMITS.maxChunks - 1)),
    data: req(bytes(1, LIMITS.chunkBytes)),
  },
} as const satisfies MessageSchema;

/** Gate → central: send me deltas, an image manifest or image chunks. */
export const SyncRequest = {
  type: 'syncreq',
  version: PROTOCOL_VERSION,
  maxSize: 192,
  fields: {
    gate: req(id()),
    list: req(id()),
    epoch: req(uint()),
    want: req(oneOf('deltas', 'manifest', 'chunks')),
    /** deltas: the version held; manifest and chunks: the image version. */
    version: req(uint()),
    /** deltas: first version wanted; chunks: first chunk index; manifest: 0. */
    from: req(uint()),
    count: req(uint(LIMITS.syncWindow, 1)),
  },
} as const satisfies MessageSchema;

/** Retained gate status: the birth on connect, the death as the MQTT will (same boot counter). */
export const GateStatus = {
  type: 'status',
  version: PROTOCOL_VERSION,
  maxSize: 2048,
  fields: {
    gate: req(id()),
    state: req(oneOf('online', 'offline')),
    /** Journal epoch: new on every reflash or reprovision, so it orders statuses across reflashes. */
    journal: req(uint()),
    boot: req(uint()),
    /**
     * Connection counter within this boot (RAM, 1 on the boot's first
     * connect): the birth and the will of one connection carry the same
     * value, so presence orders statuses by (journal, boot, conn) without a
     * flash write per message, and a replayed older status loses.
     */
    conn: req(uint()),
    at: req(uint()),
    firmware: req(printable(32)),
    line: req(line),
    direction: req(direction),
    lane: req(lane),
    lists: req({
      kind: 'array',
      max: LIMITS.maxLists,
      of: { kind: 'map', fields: { list: req(id()), epoch: req(uint()), version: req(uint()) } },
    }),
    backlog: req(uint()),
    /** Messages this gate refused since boot, by cause (the most frequent 16): forged or stale heads, deltas, commands, chunks, acks. */
    refused: req({ kind: 'array', max: LIMITS.maxRefusalCauses, of: { kind: 'map', fields: { cause: req(id(48)), count: req(uint()) } } }),
  },
} as const satisfies MessageSchema;

/** Journal records `first .. first + count - 1` of one journal epoch, hash-chained. */
export const EventBatch = {
  type: 'events',
  version: PROTOCOL_VERSION,
  maxSize: LIMITS.eventBatchBytes + 256,
  fields: {
    gate: req(id()),
    epoch: req(uint()),
    first: req(uint(undefined, 1)),
    count: req(uint(LIMITS.eventBatchCount, 1)),
    records: req(bytes(1, LIMITS.eventBatchBytes)),
    /** Chain value after record first − 1 (32 zero bytes before the first record of an epoch). */
    prev: req(bytes(32, 32)),
    /** Chain value after the batch's last record, where chain(i) = SHA-256(chain(i − 1) ‖ record i). */
    chain: req(bytes(32, 32)),
  },
} as const satisfies MessageSchema;

/**
 * Central → gate: everything up to `seq` of `epoch` is stored (highest
 * contiguous), and `chain` is the chain value after record `seq` — the `prev`
 * of the gate's next batch, kept by the gate across reboots.
 */
export const EventAck = {
  type: 'ack',
  version: PROTOCOL_VERSION,
  maxSize: 128,
  fields: {
    gate: req(id()),
    epoch: req(uint()),
    seq: req(uint()),
    chain: req(bytes(32, 32)),
  },
} as const satisfies MessageSchema;

/** A remote command; signed, expires, and carries a nonce the gate remembers. */
export const Command = {
  type: 'cmd',
  version: PROTOCOL_VERSION,
  maxSize: LIMITS.commandParamsBytes + 256,
  fields: {
    gate: req(id()),
    nonce: req(bytes(LIMITS.nonceBytes, LIMITS.nonceBytes)),
    issuedAt: req(uint()),
    expires: req(uint()),
    op: req(oneOf('open', 'lockdown', 'release', 'config')),
    params: opt(bytes(1, LIMITS.commandParamsBytes)),
  },
} as const satisfies MessageSchema;

export const CommandResult = {
  type: 'cmdres',
  version: PROTOCOL_VERSION,
  maxSize: 192,
  fields: {
    gate: req(id()),
    nonce: req(bytes(LIMITS.nonceBytes, LIMITS.nonceBytes)),
    status: req(oneOf('done', 'refused', 'failed')),
    reason: req(id()),
    at: req(uint()),
  },
} as const satisfies MessageSchema;

/**
 * The `params` of a `config` command: settings a gate takes at run time and
 * keeps across reboots (until reprovisioned). Absent fields stay as they are.
 */
export const ConfigParams = {
  type: 'config',
  version: PROTOCOL_VERSION,
  maxSize: LIMITS.commandParamsBytes,
  fields: {
    passbackSeconds: opt(uint(86400)),
    staleAfterSeconds: opt(uint(7 * 86400, 60)),
  },
} as const satisfies MessageSchema;

export type ConfigParamsMessage = MessageOf<typeof ConfigParams>;
export const encodeConfigParams = (m: ConfigParamsMessage): Uint8Array => encodeMessage(ConfigParams, m);
export const decodeConfigParams = (b: Uint8Array): Result<ConfigParamsMessage> => decodeMessage(ConfigParams, b);

export const MESSAGE_SCHEMAS = [Head, Delta, Manifest, Chunk, SyncRequest, GateStatus, EventBatch, EventAck, Command, CommandResult] as const;

export type HeadMessage = MessageOf<typeof Head>;
export type DeltaMessage = MessageOf<typeof Delta>;
export type ManifestMessage = MessageOf<typeof Manifest>;
export type ChunkMessage = MessageOf<typeof Chunk>;
export type SyncRequestMessage = MessageOf<typeof SyncRequest>;
export type GateStatusMessage = MessageOf<typeof GateStatus>;
export type EventBatchMessage = MessageOf<typeof EventBatch>;
export type EventAckMessage = MessageOf<typeof EventAck>;
export type CommandMessage = MessageOf<typeof Command>;
export type CommandResultMessage = MessageOf<typeof CommandResult>;

// Named codec functions: the API the firmware and central import.
export const encodeHead = (m: HeadMessage): Uint8Array => encodeMessage(Head, m);
export const decodeHead = (b: Uint8Array): Result<HeadMessage> => decodeMessage(Head, b);
export const encodeDelta = (m: DeltaMessage): Uint8Array => encodeMessage(Delta, m);
export const decodeDelta = (b: Uint8Array): Result<DeltaMessage> => decodeMessage(Delta, b);
export const encodeManifest = (m: ManifestMessage): Uint8Array => encodeMessage(Manifest, m);
export const decodeManifest = (b: Uint8Array): Result<ManifestMessage> => decodeMessage(Manifest, b);
export const encodeChunk = (m: ChunkMessage): Uint8Array => encodeMessage(Chunk, m);
export const decodeChunk = (b: Uint8Array): Result<ChunkMessage> => decodeMessage(Chunk, b);
export const encodeSyncRequest = (m: SyncRequestMessage): Uint8Array => encodeMessage(SyncRequest, m);
export const decodeSyncRequest = (b: Uint8Array): Result<SyncRequestMessage> => decodeMessage(SyncRequest, b);
export const encodeGateStatus = (m: GateStatusMessage): Uint8Array => encodeMessage(GateStatus, m);
export const decodeGateStatus = (b: Uint8Array): Result<GateStatusMessage> => decodeMessage(GateStatus, b);
export const encodeEventBatch = (m: EventBatchMessage): Uint8Array => encodeMessage(EventBatch, m);
export const decodeEventBatch = (b: Uint8Array): Result<EventBatchMessage> => decodeMessage(EventBatch, b);
export const encodeEventAck = (m: EventAckMessage): Uint8Array => encodeMessage(EventAck, m);
export const decodeEventAck = (b: Uint8Array): Result<EventAckMessage> => decodeMessage(EventAck, b);
export const encodeCommand = (m: CommandMessage): Uint8Array => encodeMessage(Command, m);
export const decodeCommand = (b: Uint8Array): Result<CommandMessage> => decodeMessage(Command, b);
export const encodeCommandResult = (m: CommandResultMessage): Uint8Array => encodeMessage(CommandResult, m);
export const decodeCommandResult = (b: Uint8Array): Result<CommandResultMessage> => decodeMessage(CommandResult, b);
