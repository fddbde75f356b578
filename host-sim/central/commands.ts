// Remote commands (docs/SYNC.md "Commands"): the central signs a `cmd` with
// its key, with a fresh 16-byte nonce and an expiry, publishes it on
// gates/<gate>/cmd (QoS 1), and the gate answers with a `cmdres` carrying the
// same nonce on gates/<gate>/cmdres. The gate runs a nonce at most once.

import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { sealSigned } from '../../protocol/envelope.js';
import { Command, decodeCommandResult, LIMITS, type CommandMessage, type CommandResultMessage } from '../../protocol/messages.js';
import { Maced } from '../../protocol/mac-envelope.js';
import { decodeMessage } from '../../protocol/schema.js';
import { bytesEqual, toHex } from '../../protocol/hex.js';
import { isValidId, type Topics } from '../../protocol/topics.js';
import { nodeCrypto } from '../node-crypto.js';

export type CommandOp = CommandMessage['op'];
export const COMMAND_OPS: readonly CommandOp[] = ['open', 'lockdown', 'release', 'config'];

export interface CommandOptions {
  /** expires = issuedAt + this (default 60). Zero or less makes a command that is already expired (to test gates). */
  readonly expiresInSeconds?: number;
  /** Opaque parameters (1-256 bytes), for `config`. */
  readonly params?: Uint8Array;
  /** 16 bytes (default: random). */
  readonly nonce?: Uint8Array;
  /** UTC seconds (default: the clock). */
  readonly issuedAt?: number;
}

export interface SealedCommand {
  readonly command: CommandMessage;
  /** The signed envelope: the exact bytes published. */
  readonly envelope: Uint8Array;
}

const now = (): number => Math.floor(Date.now() / 1000);

/** Builds and signs a command. Throws (RangeError) on a bad gate id, op, params or nonce. */
export function sealCommand(signingKey: Uint8Array, gate: string, op: CommandOp, options: CommandOptions = {}): SealedCommand {
  if (!isValidId(gate)) throw new RangeError(`gate id '${gate}' must be 1-32 characters of [a-z0-9_-]`);
  if (!COMMAND_OPS.includes(op)) throw new RangeError(`op must be one of ${COMMAND_OPS.join(', ')}`);
  const nonce = options.nonce ?? new Uint8Array(randomBytes(LIMITS.nonceBytes));
  if (nonce.length !== LIMITS.nonceBytes) throw new RangeError(`nonce must be ${LIMITS.nonceBytes} bytes`);
  const issuedAt = options.issuedAt ?? now();
  const lifetime = options.expiresInSeconds ?? 60;
  if (!Number.isInteger(lifetime)) throw new RangeError('expiresInSeconds must be an integer');
  const expires = Math.min(0xffffffff, Math.max(0, issuedAt + lifetime));
  const params = options.params;
  if (params !== undefined && (params.length < 1 || params.length > LIMITS.commandParamsBytes)) throw new RangeError(`params must be 1-${LIMITS.commandParamsBytes} bytes`);
  const command: CommandMessage = { gate, nonce, issuedAt, expires, op, ...(params !== undefined ? { params } : {}) };
  return { command, envelope: sealSigned(Command, command, signingKey, nodeCrypto) };
}

/** Opens a command result received on a topic: the gate's MAC checked (gate-authenticator.ts). */
export type OpenedResult = { readonly ok: true; readonly value: CommandResultMessage } | { readonly ok: false; readonly cause: string };
export type OpenResult = (topic: string, bytes: Uint8Array) => OpenedResult | Promise<OpenedResult>;

export interface CommandAnswer {
  /** The gate's verified answer, or null when none came within waitMs. */
  readonly result: CommandResultMessage | null;
  /** Answers for this nonce that failed verification (forgeries), by cause. */
  readonly refused: Readonly<Record<string, number>>;
}

/** The nonce a command result claims, read without trusting it (to report forgeries against the command they target). */
export function claimedNonce(bytes: Uint8Array): Uint8Array | null {
  const env = decodeMessage({ ...Maced, maxSize: 1024 }, bytes);
  const r = decodeCommandResult(env.ok ? env.value.body : bytes);
  return r.ok ? r.value.nonce : null;
}

/**
 * Publishes a sealed command on a connected client and waits for the gate's
 * answer with the same nonce, verified by `open`; results that fail it are
 * counted, never taken. Resolves with result null when nothing verified came
 * within waitMs. Subscribes to the gate's cmdres topic first (and unsubscribes after).
 */
export async function sendCommandOver(client: MqttClient, topics: Topics, sealed: SealedCommand, waitMs: number, open: OpenResult): Promise<CommandAnswer> {
  const gate = sealed.command.gate;
  const resTopic = topics.gate(gate, 'cmdres');
  const refused: Record<string, number> = {};
  let done: (r: CommandResultMessage | null) => void = () => {};
  const answer = new Promise<CommandResultMessage | null>((resolve) => {
    done = resolve;
  });
  const onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== resTopic) return;
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    void Promise.resolve(open(topic, bytes)).then((r) => {
      if (!r.ok) {
        const n = claimedNonce(bytes);
        if (n !== null && bytesEqual(n, sealed.command.nonce)) refused[r.cause] = (refused[r.cause] ?? 0) + 1;
        return;
      }
      if (r.value.gate === gate && bytesEqual(r.value.nonce, sealed.command.nonce)) done(r.value);
    }, () => undefined);
  };
  client.on('message', onMessage);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await client.subscribeAsync(resTopic, { qos: 1 });
    await client.publishAsync(topics.gate(gate, 'cmd'), Buffer.from(sealed.envelope), { qos: 1 });
    timer = setTimeout(() => done(null), waitMs);
    return { result: await answer, refused };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    client.off('message', onMessage);
    if (client.connected) await client.unsubscribeAsync(resTopic).catch(() => undefined);
  }
}

export const nonceHex = (c: SealedCommand | CommandMessage): string => toHex('command' in c ? c.command.nonce : c.nonce);
