// The reference central: registry transactions and their delta records,
// stable ids, images per version, deltas-over-a-base against the new image
// (real overlay and decision engine), the event store's exactly-once and
// chain checks, keys, and the Central end to end against the embedded broker
// and against Mosquitto with a fake gate made of MQTT.js.
//
// The registry, event store, schema and end-to-end suites run on both store
// engines (issue 18): SQLite and a real PostgreSQL (test/helpers/store-engines.ts;
// the PostgreSQL suites say "not run" where its binaries are missing). What only
// SQLite has (a schema 1 file from older builds) is in a SQLite suite.

import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { decide, Decision, DEFAULT_POLICY, type GateConfig, type TapState } from '../firmware/core/decision.js';
import { OverlayIndex } from '../firmware/core/overlay.js';
import { Whitelist } from '../firmware/core/whitelist.js';
import { WhitelistImage } from '../firmware/core/whitelist-image.js';
import { KeyRing, openSigned, sealSigned } from '../protocol/envelope.js';
import { nobleCrypto, signEd25519 } from '../protocol/crypto-noble.js';
import { credentialKey } from '../protocol/credential-key.js';
import { bytesEqual, toHex } from '../protocol/hex.js';
import {
  Delta, EventAck, EventBatch, GateStatus, Head, SyncRequest, decodeManifest, decodeChunk, encodeEventBatch, type GateStatusMessage, type HeadMessage, type SyncRequestMessage,
} from '../protocol/messages.js';
import { peekType, type MessageOf, type MessageSchema } from '../protocol/schema.js';
import { openMaced, sealMaced } from '../protocol/mac-envelope.js';
import { Topics } from '../protocol/topics.js';
import { Reason } from '../protocol/reasons.js';
import { DELTA_RECORD_BYTES, NONE16, type Direction, type Line } from '../protocol/whitelist-format.js';
import { buildImageFromTables, buildSchedule, type GrantSpec } from '../host-sim/central/image-builder.js';
import { MAX_DELTA_RECORDS, Registry, RegistryError, type CommitInfo, type RegistryOptions } from '../host-sim/central/registry.js';
import type { IngestResult } from '../host-sim/central/event-store.js';
import { Central } from '../host-sim/central/central.js';
import { generateKeys, KeyFileError, readKeyFile, writeKeyFile } from '../host-sim/central/keys.js';
import { openCentralStore, openDb, type CentralStore } from '../host-sim/central/store/open-store.js';
import { checkSchema, migrate, SCHEMA_VERSION, SchemaError, schemaVersion } from '../host-sim/central/store/schema.js';
import type { SqlDb } from '../host-sim/central/store/sql-db.js';
import { startEmbeddedBroker, startMosquitto, type BrokerHandle } from '../host-sim/broker.js';
import { Ed25519Signer, nodeCrypto, sha256Pair } from '../host-sim/node-crypto.js';
import { engineSuites, postgresServer, type Engine } from './helpers/store-engines.js';

// ---------------------------------------------------------------- helpers

const KEYS = generateKeys();
const RING = new KeyRing(nobleCrypto, [KEYS.publicKey]);
const T0 = 1_767_225_600; // 2026-01-01 UTC

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface KeyChoice {
  /** null: no key at all. */
  readonly signingKey?: Uint8Array | null;
  readonly deploymentKey?: Uint8Array | null;
  readonly clock?: () => number;
}

function registryOptions(extra: KeyChoice = {}): RegistryOptions {
  return {
    signingKey: extra.signingKey === null ? undefined : (extra.signingKey ?? KEYS.signingKey),
    deploymentKey: extra.deploymentKey === null ? undefined : (extra.deploymentKey ?? KEYS.deploymentKey),
    clock: extra.clock ?? (() => T0),
  };
}

/** A new database on the engine with the central's stores; the registry on the test keys and clock T0. */
function openRegistry(engine: Engine, extra: KeyChoice = {}): Promise<CentralStore> {
  return engine.store({ registry: registryOptions(extra) });
}

const ALL: GrantSpec = { lines: ['first', 'second'], directions: ['in', 'out'], lanes: ['person', 'vehicle', 'goods'] };
const FIRST_IN: GrantSpec = { lines: ['first'], directions: ['in'], lanes: ['person'] };

/** Test-side decoder of delta records: one readable string per record. */
function decodeRecords(records: Uint8Array): string[] {
  assert.is(records.length % DELTA_RECORD_BYTES, 0);
  const v = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const out: string[] = [];
  const n = (x: number) => (x === NONE16 ? '-' : String(x));
  for (let at = 0; at < records.length; at += DELTA_RECORD_BYTES) {
    const op = v.getUint8(at);
    assert.is(v.getUint8(at + 1), 0, 'reserved byte');
    const a = v.getUint16(at + 2, true);
    const key = toHex(records.subarray(at + 4, at + 12));
    const b = v.getUint16(at + 12, true);
    const c = v.getUint16(at + 14, true);
    switch (op) {
      case 1:
        out.push(`add ${key} ${n(a)} ${n(b)}`);
        break;
      case 2:
        out.push(`revoke ${key}`);
        break;
      case 3:
        out.push(`suspendSubject ${key}`);
        break;
      case 4:
        out.push(`resumeSubject ${key}`);
        break;
      case 5:
        out.push(`suspendInstitution ${a}`);
        break;
      case 6:
        out.push(`resumeInstitution ${a}`);
        break;
      case 7:
        out.push(`suspendIndustry ${a}`);
        break;
      case 8:
        out.push(`resumeIndustry ${a}`);
        break;
      case 9:
        out.push(`defineGrant ${a} ${toHex(records.subarray(at + 4, at + 16))}`);
        break;
      case 10:
        out.push(`defineInstitution ${a} ${n(b)} ${n(c)}`);
        break;
      case 11:
        out.push(`defineIndustry ${a} ${n(c)}`);
        break;
      case 12:
        out.push('noop');
        break;
      default:
        out.push(`op${op}`);
    }
  }
  return out;
}

/** The records of the registry's delta for `version`, after checking its signature and header. */
async function deltaOps(r: Registry, version: number): Promise<string[]> {
  const d = await r.delta('main', version);
  assert.ok(d !== undefined, `delta ${version} stored`);
  const opened = openSigned(Delta, d.envelope, RING);
  assert.ok(opened.ok, 'delta signature verifies');
  if (!opened.ok) return [];
  assert.equal([opened.value.list, opened.value.epoch, opened.value.version], ['main', (await r.list('main')).epoch, version]);
  assert.ok(bytesEqual(opened.value.records, d.records));
  return decodeRecords(d.records);
}

/** Runs a mutation and returns the records of the one version it made. */
async function change(r: Registry, fn: () => Promise<unknown>): Promise<string[]> {
  const before = await r.version();
  await fn();
  assert.is(await r.version(), before + 1, 'one version per mutation');
  return deltaOps(r, before + 1);
}

async function throwsField(fn: () => Promise<unknown>, field: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, RegistryError);
    assert.is((e as RegistryError).field, field, (e as Error).message);
    assert.ok((e as Error).message.includes(field), `message names the field: ${(e as Error).message}`);
    return;
  }
  assert.unreachable(`expected a RegistryError on ${field}`);
}

async function snapshot(r: Registry): Promise<string> {
  const l = await r.list('main');
  return JSON.stringify({ counts: await r.counts(), l, deltas: (await r.deltas('main', l.epoch, 1, 1 << 30)).length, tables: await r.tables(), keys: [] });
}

const hexed = (_k: string, x: unknown): unknown => (x instanceof Uint8Array ? toHex(x) : x);

/** Every row of every table, order-independent: "nothing changed" means this is equal. */
async function dump(db: SqlDb): Promise<string> {
  const out: Record<string, string[]> = {};
  for (const t of [...(await db.tables())].sort()) out[t] = (await db.all(`SELECT * FROM ${t}`)).map((row) => JSON.stringify(row, hexed)).sort();
  return JSON.stringify(out);
}

/** The error a promise rejects with (fails when it resolves). */
async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return assert.unreachable(`${what}: expected a refusal`);
}

/** Regular files under a directory, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---------------------------------------------------------------- registry

engineSuites('central registry', (test, engine) => {
  test('every mutation is one version whose signed delta holds the records of the change', async () => {
    const s = await openRegistry(engine);
    const r = s.registry;
    const ek = (x: string) => toHex(r.credentialKey('card', x));
    assert.is(await r.version(), 0);
    assert.ok((await r.list('main')).epoch >= T0, 'epoch from the clock, so a re-created database does not reuse one');
    assert.equal(await change(r, async () => assert.is(await r.addIndustry({ name: 'Artificial intelligence', code: 'ai' }), 0)), ['defineIndustry 0 -']);
    assert.equal(await change(r, async () => assert.is(await r.addIndustry({ name: 'Biomedicine', code: 'bio' }), 1)), ['defineIndustry 1 -']);
    assert.equal(await change(r, async () => assert.is(await r.addInstitution({ name: 'Quantum Science Centre', industry: 0 }), 0)), ['defineInstitution 0 0 -']);
    assert.equal(await change(r, async () => assert.is(await r.addInstitution({ name: 'Independent lab' }), 1)), ['defineInstitution 1 - -']);
    assert.equal(await change(r, () => r.addSubject({ id: 'p-1', kind: 'person', institution: 0, name: 'Chan Tai Man' })), ['noop'], 'nothing for the gates: the no-op record');
    assert.equal(await change(r, () => r.addCredential({ subject: 'p-1', kind: 'card', rawId: '04a1b2c3' })), [`add ${ek('04a1b2c3')} 0 -`]);
    assert.equal(await change(r, () => r.addCredential({ subject: 'p-1', kind: 'card', rawId: '04a1b2c4' })), [`add ${ek('04a1b2c4')} 0 -`]);
    const g0 = await r.grant('individual', 'p-1', FIRST_IN);
    assert.is(g0, 0);
    assert.equal(await deltaOps(r, await r.version()), [`defineGrant 0 ${toHex(new Uint8Array([0x15, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))}`, ...[ek('04a1b2c3'), ek('04a1b2c4')].sort().map((k) => `add ${k} 0 0`)]);
    assert.equal(await change(r, async () => assert.is(await r.grant('institution', 0, ALL), 1)), [`defineGrant 1 ${toHex(new Uint8Array([0x7f, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]))}`, 'defineInstitution 0 0 1']);
    await r.addSubject({ id: 'v-1', kind: 'vehicle', name: 'Truck' });
    await r.addCredential({ subject: 'v-1', kind: 'uhf', rawId: 'e28011700000020' + '0' });
    const vk = toHex(r.credentialKey('uhf', 'e280117000000200'));
    assert.equal(await change(r, async () => assert.is(await r.grant('individual', 'v-1', { lanes: ['person'], lines: ['first'], directions: ['in', 'in'] }), 0, 'same rights, same grant id')), [`add ${vk} - 0`]);
    assert.equal(await change(r, () => r.grant('individual', 'v-1', null)), [`add ${vk} - -`]);
    assert.equal((await change(r, () => r.grant('industry', 1, FIRST_IN))).length, 1, 'an industry grant travels as defineIndustry');
    assert.equal(await change(r, () => r.revokeCredential({ kind: 'card', rawId: '04A1B2C4' })), [`revoke ${ek('04a1b2c4')}`]);
    assert.equal(await change(r, () => r.addCredential({ subject: 'p-1', kind: 'card', rawId: '04a1b2c5' })), [`add ${ek('04a1b2c5')} 0 0`]);
    assert.equal(await change(r, () => r.suspend('subject', 'p-1')), [`suspendSubject ${ek('04a1b2c3')}`, `suspendSubject ${ek('04a1b2c5')}`].sort(), 'one record per active credential');
    assert.equal((await change(r, () => r.addCredential({ subject: 'p-1', kind: 'card', rawId: '04a1b2c6' }))).length, 2, 'a new credential of a suspended subject: add then suspendSubject');
    assert.equal(
      await change(r, () => r.resume('subject', 'p-1')),
      [ek('04a1b2c3'), ek('04a1b2c5'), ek('04a1b2c6')].sort().flatMap((k) => [`add ${k} 0 0`, `resumeSubject ${k}`]),
      'resume adds back (images leave suspended subjects out) and resumes',
    );
    assert.equal(await change(r, () => r.addCredential({ subject: 'v-1', kind: 'card', rawId: '04a1b2c4' })), [`add ${ek('04a1b2c4')} - -`, `resumeSubject ${ek('04a1b2c4')}`], 'a revoked key enrolled again');
    assert.equal(await change(r, () => r.suspend('institution', 0)), ['suspendInstitution 0']);
    assert.equal(await change(r, () => r.resume('institution', 0)), ['resumeInstitution 0']);
    assert.equal(await change(r, () => r.suspend('industry', 1)), ['suspendIndustry 1']);
    assert.equal(await change(r, () => r.resume('industry', 1)), ['resumeIndustry 1']);
    assert.equal(await change(r, async () => assert.is(await r.addSchedule(buildSchedule([[0, 16, 36]])), 0)), ['noop'], 'schedules travel only in images');
    assert.is((await r.subject('p-1'))?.suspended, false);
    assert.is((await r.subject('p-1'))?.grant, 0);
    assert.equal(
      (await r.credentials('p-1')).map((c) => c.revoked),
      [false, false, false],
    );
    await s.close();
  });

  test('a change that changes nothing makes no version and writes no row, alone or inside bulk', async () => {
    let now = T0;
    const s = await openRegistry(engine, { clock: () => now++ });
    const r = s.registry;
    await r.addIndustry({ name: 'AI', code: 'ai' });
    await r.addInstitution({ name: 'Lab', industry: 0 });
    await r.addSubject({ id: 'p-1', kind: 'person', institution: 0, name: 'Li Wei' });
    await r.addCredential({ subject: 'p-1', kind: 'card', rawId: '04a1b2c3' });
    await r.grant('individual', 'p-1', FIRST_IN);
    await r.suspend('institution', 0);
    await r.revokeCredential({ kind: 'card', rawId: '04a1b2c3' });
    const revokedAt = async () => (await r.db.get<{ revoked_at: number }>('SELECT revoked_at FROM credentials'))?.revoked_at;
    const firstRevocation = await revokedAt();
    assert.type(firstRevocation, 'number');
    const v = await r.version();
    const rows = async () => JSON.stringify(await r.tables(), hexed);
    const before = await rows();
    const noops: [string, () => Promise<unknown>][] = [
      ['suspend a suspended institution', () => r.suspend('institution', 0)],
      ['resume an industry never suspended', () => r.resume('industry', 0)],
      ['resume a subject never suspended', () => r.resume('subject', 'p-1')],
      ['the same grant again (equal rights, another spelling)', async () => assert.is(await r.grant('individual', 'p-1', { ...FIRST_IN, directions: ['in', 'in'] }), 0)],
      ['remove a grant that does not exist', async () => assert.is(await r.grant('institution', 0, null), null)],
      ['revoke a revoked credential', () => r.revokeCredential({ kind: 'card', rawId: '04a1b2c3' })],
    ];
    for (const [what, fn] of noops) {
      await fn();
      assert.is(await r.version(), v, what);
    }
    await r.bulk(async () => {
      for (const [, fn] of noops) await fn();
    });
    assert.is(await r.version(), v, 'a bulk of no-ops');
    assert.is(await rows(), before, 'no row written');
    assert.is(await revokedAt(), firstRevocation, 'the first revocation time is kept');
    assert.equal(await r.deltas('main', (await r.list('main')).epoch, v + 1, 10), [], 'no delta');
    // One real change among no-ops: one version, holding only its own records.
    await r.bulk(async () => {
      await r.suspend('institution', 0);
      await r.resume('institution', 0);
      await r.suspend('institution', 0);
    });
    assert.is(await r.version(), v + 1, 'two real changes in one bulk: one version');
    assert.equal(await deltaOps(r, v + 1), ['resumeInstitution 0', 'suspendInstitution 0']);
    await s.close();
  });

  test('validation errors name the field, and nothing is half-applied', async () => {
    const s = await openRegistry(engine);
    const r = s.registry;
    await r.addIndustry({ name: 'AI', code: 'ai' });
    await r.addInstitution({ name: 'Lab', industry: 0 });
    await r.addSubject({ id: 'p-1', kind: 'person', institution: 0, name: 'A' });
    await r.addCredential({ subject: 'p-1', kind: 'card', rawId: '01' });
    const before = await snapshot(r);
    await throwsField(() => r.addIndustry({ name: '', code: 'x' }), 'name');
    await throwsField(() => r.addIndustry({ name: 'Again', code: 'ai' }), 'code');
    await throwsField(() => r.addIndustry({ name: 'Bad', code: 'A I' }), 'code');
    await throwsField(() => r.addInstitution({ name: 'X', industry: 9 }), 'industry');
    await throwsField(() => r.addInstitution({ name: 'X', industry: 1.5 }), 'industry');
    await throwsField(() => r.addSubject({ id: 'has space', kind: 'person', name: 'A' }), 'id');
    await throwsField(() => r.addSubject({ id: 'p-1', kind: 'person', name: 'A' }), 'id');
    await throwsField(() => r.addSubject({ id: 'p-2', kind: 'robot' as 'person', name: 'A' }), 'kind');
    await throwsField(() => r.addSubject({ id: 'p-2', kind: 'person', institution: 77, name: 'A' }), 'institution');
    await throwsField(() => r.addSubject({ id: 'p-2', kind: 'person', name: ' padded ' }), 'name');
    await throwsField(() => r.addCredential({ subject: 'nobody', kind: 'card', rawId: '02' }), 'subject');
    await throwsField(() => r.addCredential({ subject: 'p-1', kind: 'nfc' as 'card', rawId: '02' }), 'kind');
    await throwsField(() => r.addCredential({ subject: 'p-1', kind: 'card', rawId: 'xyz' }), 'rawId');
    await throwsField(() => r.addCredential({ subject: 'p-1', kind: 'card', rawId: new Uint8Array(65) }), 'rawId');
    await throwsField(() => r.addCredential({ subject: 'p-1', kind: 'card', rawId: '01' }), 'rawId');
    await throwsField(() => r.grant('individual', 'nobody', ALL), 'target');
    await throwsField(() => r.grant('institution', 5, ALL), 'target');
    await throwsField(() => r.grant('industry', '0', ALL), 'target');
    await throwsField(() => r.grant('planet' as 'industry', 0, ALL), 'level');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, lines: ['third' as Line] }), 'spec.lines');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, directions: [] as Direction[] }), 'spec.directions');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, validFrom: 10, validUntil: 5 }), 'spec.validUntil');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, validFrom: -1 }), 'spec.validFrom');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, schedule: 0 }), 'spec.schedule');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, passbackGroup: 0 }), 'spec.passbackGroup');
    await throwsField(() => r.grant('individual', 'p-1', { ...ALL, color: 'red' } as GrantSpec), 'spec.color');
    await throwsField(() => r.revokeCredential({ kind: 'card', rawId: '99' }), 'credential');
    await throwsField(() => r.revokeCredential({ key: new Uint8Array(7) }), 'key');
    await throwsField(() => r.suspend('planet' as 'subject', 'p-1'), 'level');
    await throwsField(() => r.suspend('subject', 'nobody'), 'target');
    await throwsField(() => r.addSchedule(new Uint8Array(47)), 'bytes');
    assert.is(await snapshot(r), before, 'refused mutations change nothing');

    // A bulk that fails part-way leaves nothing behind, ids included.
    await throwsField(
      () =>
        r.bulk(async (b) => {
          await b.addIndustry({ name: 'Bio', code: 'bio' });
          await b.addInstitution({ name: 'Lab 2', industry: 1 });
          await b.addSubject({ id: 'p-2', kind: 'person', institution: 1, name: 'B' });
          await b.addCredential({ subject: 'p-2', kind: 'card', rawId: '01' }); // already enrolled
        }),
      'rawId',
    );
    assert.is(await snapshot(r), before, 'a failed bulk changes nothing');
    assert.is(await r.addIndustry({ name: 'Bio', code: 'bio' }), 1, 'ids not consumed by the failed bulk');

    // Inside a bulk, a refused mutation that is caught leaves only the others.
    const v = await r.version();
    await r.bulk(async (b) => {
      await b.addSubject({ id: 'p-3', kind: 'person', name: 'C' });
      try {
        await b.addCredential({ subject: 'p-3', kind: 'card', rawId: '01' });
      } catch {
        /* refused, rolled back to its savepoint */
      }
      await b.addCredential({ subject: 'p-3', kind: 'card', rawId: '03' });
    });
    assert.is(await r.version(), v + 1, 'one bulk, one version');
    assert.equal(await deltaOps(r, v + 1), [`add ${toHex(r.credentialKey('card', '03'))} - -`]);
    assert.is((await r.credentials('p-3')).length, 1);
    await r.bulk(async () => {});
    assert.is(await r.version(), v + 1, 'an empty bulk makes no version');

    const unsigned = await openRegistry(engine, { signingKey: null });
    await throwsField(() => unsigned.registry.addIndustry({ name: 'AI', code: 'ai' }), 'signingKey');
    assert.is(await unsigned.registry.version(), 0);
    await unsigned.close();
    const noDeployment = await openRegistry(engine, { deploymentKey: null });
    await noDeployment.registry.addSubject({ id: 'p-1', kind: 'person', name: 'A' });
    await throwsField(() => noDeployment.registry.addCredential({ subject: 'p-1', kind: 'card', rawId: '01' }), 'deploymentKey');
    await noDeployment.close();
    await s.close();
  });

  test('a mutation that throws inside bulk leaves nothing behind, and the rest of the bulk commits', async () => {
    const s = await openRegistry(engine);
    const r = s.registry;
    await r.addIndustry({ name: 'AI', code: 'ai' });
    await r.addSubject({ id: 'p-1', kind: 'person', name: 'A' });
    await r.addCredential({ subject: 'p-1', kind: 'card', rawId: 'ee01' });
    const v = await r.version();
    const counts = await r.counts();
    const raw = (i: number) => `c0${i.toString(16).padStart(4, '0')}`;
    const commits: CommitInfo[] = [];
    r.onCommit((c) => commits.push(c));
    const kept: string[] = [];
    let refused = 0;
    await r.bulk(async (b) => {
      // Enough mutations before the failures that the bulk packs its records as it goes (every 64 groups).
      for (let i = 0; i < 100; i++) kept.push(toHex(await b.addCredential({ subject: 'p-1', kind: 'card', rawId: raw(i) })));
      // A mutation that has written rows and records, then throws: a nested bulk.
      try {
        await b.bulk(async (x) => {
          await x.addIndustry({ name: 'Gone', code: 'gone' });
          await x.addSubject({ id: 'p-gone', kind: 'person', name: 'Gone' });
          await x.addCredential({ subject: 'p-gone', kind: 'card', rawId: 'dd01' });
          await x.suspend('subject', 'p-1');
          throw new Error('boom');
        });
      } catch (e) {
        assert.is((e as Error).message, 'boom');
        refused++;
      }
      // A refused mutation (validation after reads).
      try {
        await b.addCredential({ subject: 'p-1', kind: 'card', rawId: 'ee01' });
      } catch (e) {
        assert.instance(e, RegistryError);
        refused++;
      }
      for (let i = 100; i < 105; i++) kept.push(toHex(await b.addCredential({ subject: 'p-1', kind: 'card', rawId: raw(i) })));
    });
    assert.is(refused, 2);
    assert.is(await r.version(), v + 1, 'the bulk is one version');
    assert.equal(commits.map((c) => c.deltas.map((d) => d.version)), [[v + 1]]);
    assert.equal(await deltaOps(r, v + 1), kept.map((k) => `add ${k} - -`), 'only the kept mutations\' records, in their order');
    assert.is(await r.subject('p-gone'), undefined, 'the failed mutation\'s subject is not there');
    assert.is(await r.credential({ kind: 'card', rawId: 'dd01' }), undefined, 'nor its credential');
    assert.is(await r.industryByCode('gone'), undefined, 'nor its industry');
    assert.is((await r.subject('p-1'))?.suspended, false, 'nor its suspension');
    assert.equal(await r.counts(), { ...counts, credentials: counts.credentials + 105 });
    assert.is(await r.addIndustry({ name: 'Bio', code: 'bio' }), 1, 'the failed mutation consumed no id');
    await s.close();
  });

  test('two registries on one database changing it at once: consecutive versions, one delta each, no version twice', async () => {
    const target = await engine.fresh();
    const a = await openCentralStore(target, { create: true, registry: registryOptions() });
    const b = await openCentralStore(target, { registry: registryOptions() });
    try {
      await a.registry.addSubject({ id: 'p-a', kind: 'person', name: 'A' });
      await b.registry.addSubject({ id: 'p-b', kind: 'person', name: 'B' });
      const v0 = await b.registry.version();
      assert.is(v0, 2, 'each sees the other\'s changes');
      const made: [number[], number[]] = [[], []];
      a.registry.onCommit((c) => made[0].push(...c.deltas.map((d) => d.version)));
      b.registry.onCommit((c) => made[1].push(...c.deltas.map((d) => d.version)));
      const N = 30;
      const enrol = async (r: Registry, tag: 'a' | 'b'): Promise<string[]> => {
        const keys: string[] = [];
        for (let i = 0; i < N; i++) keys.push(toHex(await r.addCredential({ subject: `p-${tag}`, kind: 'card', rawId: `${tag === 'a' ? 'aa' : 'bb'}${i.toString(16).padStart(4, '0')}` })));
        return keys;
      };
      const [ka, kb] = await Promise.all([enrol(a.registry, 'a'), enrol(b.registry, 'b')]);
      assert.is(await a.registry.version(), v0 + 2 * N);
      assert.is(await b.registry.version(), v0 + 2 * N);
      assert.equal([...made[0], ...made[1]].sort((x, y) => x - y), range(v0 + 1, v0 + 2 * N), 'every version made once, by one of them');
      assert.is(made[0].length, N);
      assert.is(made[1].length, N);
      const l = await a.registry.list('main');
      const deltas = await b.registry.deltas('main', l.epoch, 1, 1000);
      assert.equal(deltas.map((d) => d.version), range(1, v0 + 2 * N), 'one delta per version');
      const added: string[] = [];
      for (const v of range(v0 + 1, v0 + 2 * N)) {
        const ops = await deltaOps(a.registry, v);
        assert.is(ops.length, 1, `version ${v}: one change`);
        added.push(ops[0]!);
      }
      assert.equal(added.sort(), [...ka, ...kb].map((k) => `add ${k} - -`).sort(), 'each change in exactly one version');
      // The versions each registry made hold its own credentials, in the order it made them.
      const own = async (versions: number[]) => {
        const out: string[] = [];
        for (const v of versions) out.push(((await deltaOps(a.registry, v))[0] ?? '').split(' ')[1]!);
        return out;
      };
      assert.equal(await own(made[0]), ka);
      assert.equal(await own(made[1]), kb);
      assert.ok(bytesEqual(buildImageFromTables(await a.registry.tables()), buildImageFromTables(await b.registry.tables())), 'the same image from both');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('ids are stable: grants deduplicated, a retired grant stays a null entry, ids never reused', async () => {
    const s = await openRegistry(engine);
    const r = s.registry;
    await r.addSubject({ id: 'p-1', kind: 'person', name: 'A' });
    await r.addSubject({ id: 'p-2', kind: 'person', name: 'B' });
    await r.addCredential({ subject: 'p-1', kind: 'card', rawId: '01' });
    assert.is(await r.grant('individual', 'p-1', ALL), 0);
    assert.is(await r.grant('individual', 'p-2', ALL), 0);
    assert.is(await r.grant('individual', 'p-1', FIRST_IN), 1);
    assert.equal((await r.tables()).grants.length, 2);
    assert.ok((await r.tables()).grants[0] !== null, 'still used by p-2');
    assert.is(await r.grant('individual', 'p-2', null), null);
    assert.is((await r.tables()).grants[0], null, 'retired: a null entry keeps later ids in place');
    assert.is(await r.grantSpec(0), null);
    assert.is(await r.grant('individual', 'p-2', ALL), 2, 'a retired id is never reused');
    const t = await r.tables();
    assert.equal(t.grants.length, 3);
    assert.equal(t.credentials.map((c) => c.grant), [1]);
    const img = WhitelistImage.open(buildImageFromTables(t));
    assert.ok(img instanceof WhitelistImage);
    if (img instanceof WhitelistImage) {
      assert.is(img.grantCount, 3, 'the image keeps every id');
      assert.is(img.grantMasks(0), 0, 'a retired grant opens nothing');
    }
    await s.close();
  });

  test('images at successive versions: header, counts, and left-out credentials', async () => {
    const s = await openRegistry(engine);
    const r = s.registry;
    await r.addIndustry({ name: 'AI', code: 'ai' });
    await r.addInstitution({ name: 'Lab', industry: 0 });
    await r.bulk(async (b) => {
      for (let i = 0; i < 20; i++) {
        await b.addSubject({ id: `p-${i}`, kind: 'person', institution: 0, name: `P ${i}` });
        await b.addCredential({ subject: `p-${i}`, kind: 'card', rawId: `a0${i.toString(16).padStart(2, '0')}` });
      }
    });
    const images: WhitelistImage[] = [];
    const open = async () => {
      const img = WhitelistImage.open(buildImageFromTables(await r.tables()));
      if (!(img instanceof WhitelistImage)) throw new Error(String(img));
      images.push(img);
      return img;
    };
    let img = await open();
    assert.equal([img.epoch, img.version, img.credCount, img.institutionCount, img.industryCount], [(await r.list()).epoch, 3, 20, 1, 1]);
    await r.revokeCredential({ kind: 'card', rawId: 'a000' });
    img = await open();
    assert.equal([img.version, img.credCount], [4, 19], 'revoked: out of the image');
    await r.suspend('subject', 'p-1');
    img = await open();
    assert.equal([img.version, img.credCount], [5, 18], 'suspended subject: out of the image');
    await r.suspend('institution', 0);
    img = await open();
    assert.equal([img.version, img.institutionSuspended(0)], [6, true]);
    assert.equal(
      images.map((i) => i.version),
      [3, 4, 5, 6],
    );
    await s.close();
  });

  test('a large bulk becomes consecutive versions of at most 1,024 records, never splitting a credential group', async () => {
    const s = await openRegistry(engine);
    const r = s.registry;
    await r.addSubject({ id: 'p-1', kind: 'person', name: 'A' });
    await r.suspend('subject', 'p-1');
    const commits: CommitInfo[] = [];
    r.onCommit((c) => commits.push(c));
    const v = await r.version();
    await r.bulk(async (b) => {
      for (let i = 0; i < 700; i++) await b.addCredential({ subject: 'p-1', kind: 'uhf', rawId: `e2${i.toString(16).padStart(6, '0')}` });
    });
    assert.is(await r.version(), v + 2);
    assert.is(commits.length, 1);
    assert.equal(
      commits[0]!.deltas.map((d) => d.version),
      [v + 1, v + 2],
    );
    const a = await deltaOps(r, v + 1);
    const b = await deltaOps(r, v + 2);
    assert.is(a.length, MAX_DELTA_RECORDS);
    assert.is(a.length + b.length, 1400);
    for (const ops of [a, b]) {
      for (let i = 0; i < ops.length; i += 2) {
        assert.ok(ops[i]!.startsWith('add '), ops[i]);
        assert.is(ops[i + 1], `suspendSubject ${ops[i]!.split(' ')[1]}`);
      }
    }
    assert.ok(bytesEqual(commits[0]!.deltas[1]!.envelope, (await r.delta('main', v + 2))!.envelope), 'listeners get the stored bytes');
    await s.close();
  });

  test('raw credential ids are never stored, only their keys', async () => {
    const target = await engine.fresh();
    const raw = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x51, 0x4c, 0x43, 0x4b, 0x99, 0x88]);
    const s = await openCentralStore(target, { create: true, registry: registryOptions() });
    await s.registry.addSubject({ id: 'p-1', kind: 'person', name: 'A' });
    const key = await s.registry.addCredential({ subject: 'p-1', kind: 'card', rawId: raw });
    await s.registry.revokeCredential({ kind: 'card', rawId: toHex(raw).toUpperCase() });
    await s.close();
    // SQLite: the database file (and any WAL). PostgreSQL: the server's whole directory, its WAL included.
    const dir = engine.name === 'sqlite' ? dirname(target) : (await postgresServer()).dir;
    const needles = { raw: Buffer.from(raw), hex: Buffer.from(toHex(raw)), HEX: Buffer.from(toHex(raw).toUpperCase()), key: Buffer.from(key) };
    const found = { raw: false, hex: false, HEX: false, key: false };
    for (const f of filesUnder(dir)) {
      const content = readFileSync(f);
      for (const k of Object.keys(needles) as (keyof typeof needles)[]) if (content.indexOf(needles[k]) >= 0) found[k] = true;
    }
    assert.not.ok(found.raw, 'raw bytes absent');
    assert.not.ok(found.hex, 'raw hex absent');
    assert.not.ok(found.HEX, 'raw HEX absent');
    assert.ok(found.key, 'the key is there');
    const again = await openCentralStore(target, { registry: registryOptions() });
    assert.equal((await again.registry.credential({ key }))?.revoked, true, 'persisted');
    await again.close();
  });

  test('deltas over a base image decide like the image of the new version (real overlay and decision engine)', async () => {
    for (const seed of [1, 2, 3]) {
      const rnd = mulberry32(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
      const sub = <T>(xs: readonly T[]): T[] => {
        const s = xs.filter(() => rnd() < 0.8);
        return s.length > 0 ? s : [pick(xs)];
      };
      const now = T0 + 86400 * 30 + 3600 * 3; // a Saturday, 11:00 UTC+8
      const spec = (scheduleCount: number): GrantSpec => {
        const validFrom = rnd() < 0.3 ? now + (rnd() < 0.5 ? -1000 : 1000) : undefined;
        const validUntil = rnd() < 0.3 ? (validFrom ?? now) + (rnd() < 0.5 ? 1 : 5000) - (rnd() < 0.5 ? 2000 : 0) : undefined;
        return {
          lines: sub(['first', 'second'] as const),
          directions: sub(['in', 'out'] as const),
          lanes: sub(['person', 'vehicle', 'goods'] as const),
          ...(validFrom !== undefined ? { validFrom } : {}),
          ...(validUntil !== undefined && validUntil >= (validFrom ?? 0) ? { validUntil } : {}),
          ...(scheduleCount > 0 && rnd() < 0.3 ? { schedule: Math.floor(rnd() * scheduleCount) } : {}),
        };
      };
      const store = await openRegistry(engine);
      const r = store.registry;
      const raws: string[] = [];
      const subjects: string[] = [];
      let industries = 0;
      let institutions = 0;
      await r.bulk(async (b) => {
        for (let i = 0; i < 3; i++) await b.addIndustry({ name: `Industry ${i}`, code: `ind-${i}` });
        industries = 3;
        await b.addSchedule(buildSchedule([[5, 0, 48]])); // all Saturday
        await b.addSchedule(buildSchedule([[0, 16, 36]])); // Monday office hours
        for (let i = 0; i < 6; i++) await b.addInstitution({ name: `Inst ${i}`, industry: i < 5 ? i % 3 : null });
        institutions = 6;
        for (let i = 0; i < 30; i++) {
          const id = `s-${i}`;
          subjects.push(id);
          await b.addSubject({ id, kind: pick(['person', 'vehicle', 'goods'] as const), institution: i % 7 === 6 ? null : i % 6, name: `Subject ${i}` });
          for (let k = 0; k < 1 + (i % 3); k++) {
            const raw = `${i.toString(16).padStart(2, '0')}${k}0`;
            raws.push(raw);
            await b.addCredential({ subject: id, kind: 'card', rawId: raw });
          }
          if (rnd() < 0.6) await b.grant('individual', id, spec(2));
        }
        for (let i = 0; i < 6; i++) if (rnd() < 0.6) await b.grant('institution', i, spec(2));
        for (let i = 0; i < 3; i++) if (rnd() < 0.7) await b.grant('industry', i, spec(2));
        await b.suspend('subject', 's-3');
        await b.suspend('institution', 4);
        await b.revokeCredential({ kind: 'card', rawId: raws[5]! });
      });
      const baseTables = await r.tables();
      const baseBytes = buildImageFromTables(baseTables);
      const base = WhitelistImage.open(baseBytes) as WhitelistImage;
      const overlay = new OverlayIndex();
      const gateWl = new Whitelist(base, overlay);
      let raw = 0x1000;
      for (let step = 0; step < 160; step++) {
        const x = rnd();
        try {
          if (x < 0.06) await r.revokeCredential({ kind: 'card', rawId: pick(raws) });
          else if (x < 0.24) {
            const s = pick(subjects);
            const rid = rnd() < 0.2 ? pick(raws) : (raw++).toString(16); // sometimes a revoked (or enrolled) key again
            await r.addCredential({ subject: s, kind: 'card', rawId: rid });
            if (!raws.includes(rid)) raws.push(rid);
          } else if (x < 0.36) await r.grant('individual', pick(subjects), rnd() < 0.2 ? null : spec(2));
          else if (x < 0.44) await r.grant('institution', Math.floor(rnd() * institutions), rnd() < 0.2 ? null : spec(2));
          else if (x < 0.56) await (rnd() < 0.5 ? r.suspend.bind(r) : r.resume.bind(r))('subject', pick(subjects));
          else if (x < 0.64) await (rnd() < 0.5 ? r.suspend.bind(r) : r.resume.bind(r))('institution', Math.floor(rnd() * institutions));
          else if (x < 0.7) await (rnd() < 0.5 ? r.suspend.bind(r) : r.resume.bind(r))('industry', Math.floor(rnd() * industries));
          else if (x < 0.76) {
            await r.addInstitution({ name: `Inst ${institutions}`, industry: rnd() < 0.8 ? Math.floor(rnd() * industries) : null });
            institutions++;
          } else if (x < 0.8) {
            await r.addIndustry({ name: `Industry ${industries}`, code: `ind-${industries}` });
            industries++;
          } else if (x < 0.9) {
            const id = `s-${subjects.length}`;
            await r.addSubject({ id, kind: 'person', institution: rnd() < 0.8 ? Math.floor(rnd() * institutions) : null, name: id });
            subjects.push(id);
          } else
            await r.bulk(async (b) => {
              await b.grant('individual', pick(subjects), spec(2));
              await b.suspend('subject', pick(subjects));
              await b.revokeCredential({ kind: 'card', rawId: pick(raws) });
            });
        } catch (e) {
          if (!(e instanceof RegistryError)) throw e;
        }
      }
      const last = await r.version();
      for (const d of await r.deltas('main', (await r.list()).epoch, baseTables.version + 1, last)) {
        const opened = openSigned(Delta, d.envelope, RING);
        assert.ok(opened.ok);
        if (opened.ok) assert.is(overlay.apply(opened.value.records), null, `delta ${d.version} applies`);
      }
      const fresh = WhitelistImage.open(buildImageFromTables(await r.tables())) as WhitelistImage;
      assert.is(fresh.version, last);
      const imageWl = new Whitelist(fresh, new OverlayIndex());
      const tap: TapState = { now, clockTrusted: true, headIssuedAt: now - 10, headExpires: now + 3600, mode: 'normal', journalFull: false };
      const a = new Decision();
      const b = new Decision();
      let granted = 0;
      let compared = 0;
      for (const rid of raws) {
        const key = r.credentialKey('card', rid);
        const dv = new DataView(key.buffer, key.byteOffset, 8);
        const hi = dv.getUint32(0, false);
        const lo = dv.getUint32(4, false);
        for (const line of ['first', 'second'] as const) {
          for (const direction of ['in', 'out'] as const) {
            for (const lane of ['person', 'goods'] as const) {
              const gate: GateConfig = { line, direction, lane, policy: DEFAULT_POLICY[line], passbackSeconds: 0 };
              decide(hi, lo, gate, tap, gateWl, null, a);
              decide(hi, lo, gate, tap, imageWl, null, b);
              // Images cannot say revoked or subject_suspended: such credentials are left out.
              const ra = a.reason === Reason.revoked || a.reason === Reason.subject_suspended ? Reason.unknown_credential : a.reason;
              assert.equal([a.granted, ra, a.level], [b.granted, b.reason, b.level], `seed ${seed} key ${rid} ${line}/${direction}/${lane}`);
              compared++;
              if (a.granted) granted++;
            }
          }
        }
      }
      assert.ok(granted > compared / 20 && granted < compared - compared / 20, `a mix of grants and denials (${granted}/${compared})`);
      await store.close();
    }
  });
});

// ---------------------------------------------------------------- event store

function records(n: number, seed: number): Uint8Array[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, () => Uint8Array.from({ length: 16 }, () => Math.floor(rnd() * 256)));
}
function chainTo(recs: readonly Uint8Array[], seq: number): Uint8Array {
  let c: Uint8Array = new Uint8Array(32);
  for (let i = 0; i < seq; i++) c = sha256Pair(c, recs[i]!);
  return c;
}
/** Records first..first+count-1 (1-based) of recs as a batch, chained from the true chain(first-1) unless `prev` is given. */
function batch(recs: readonly Uint8Array[], first: number, count: number, o: { gate?: string; epoch?: number; prev?: Uint8Array; chain?: Uint8Array } = {}) {
  const slice = recs.slice(first - 1, first - 1 + count);
  const prev = o.prev ?? chainTo(recs, first - 1);
  let c = prev;
  for (const r of slice) c = sha256Pair(c, r);
  const all = new Uint8Array(count * 16);
  slice.forEach((r, i) => all.set(r, i * 16));
  return { gate: o.gate ?? 'g-1', epoch: o.epoch ?? 7, first, count, records: all, prev, chain: o.chain ?? c };
}
function expectAck(res: IngestResult, seq: number, recs: readonly Uint8Array[]): void {
  assert.ok(res.ack !== null, 'an ack');
  assert.is(res.ack?.seq, seq);
  assert.ok(bytesEqual(res.ack.chain, chainTo(recs, seq)), `ack chain = chain(${seq})`);
}

engineSuites('central event store', (test, engine) => {
  test('in order, duplicates and overlaps: each record stored once, the ack is the contiguous seq', async () => {
    const store = await engine.store();
    const s = store.events;
    const recs = records(40, 1);
    let r = await s.ingest(batch(recs, 1, 10));
    assert.equal([r.stored, r.duplicates, r.problem], [10, 0, undefined]);
    expectAck(r, 10, recs);
    r = await s.ingest(batch(recs, 1, 10));
    assert.equal([r.stored, r.duplicates, r.problem], [0, 10, undefined]);
    expectAck(r, 10, recs);
    r = await s.ingest(batch(recs, 5, 11));
    assert.equal([r.stored, r.duplicates], [5, 6]);
    expectAck(r, 15, recs);
    r = await s.ingest(batch(recs, 16, 5));
    assert.equal([r.stored, r.duplicates], [5, 0]);
    expectAck(r, 20, recs);
    assert.is(await s.count(), 20);
    assert.is(await s.count('g-1'), 20);
    assert.is(await s.count('g-2'), 0);
    assert.is(await s.audit('g-1', 7), null, 'stored chain audits from seq 1');
    const rows = await s.export('g-1', 7);
    assert.equal(
      rows.map((x) => x.seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.ok(bytesEqual(rows[3]!.record, recs[3]!));
    assert.ok(bytesEqual(rows[19]!.chain, chainTo(recs, 20)));
    await store.close();
  });

  test('reordering: a batch beyond a gap is stored once, the ack waits, then jumps when the gap is filled', async () => {
    const store = await engine.store();
    const s = store.events;
    const recs = records(40, 2);
    await s.ingest(batch(recs, 1, 10));
    let r = await s.ingest(batch(recs, 21, 10));
    assert.equal([r.stored, r.problem], [10, 'gap_before']);
    expectAck(r, 10, recs);
    r = await s.ingest(batch(recs, 31, 5));
    assert.equal([r.stored, r.problem], [5, 'gap_before']);
    r = await s.ingest(batch(recs, 11, 10));
    assert.equal([r.stored, r.duplicates, r.problem], [10, 0, undefined]);
    expectAck(r, 35, recs);
    r = await s.ingest(batch(recs, 11, 25)); // the gate re-sends from its last ack
    assert.equal([r.stored, r.duplicates], [0, 25]);
    expectAck(r, 35, recs);
    assert.is(await s.count(), 35);
    assert.is(await s.audit('g-1', 7), null);
    // Nothing stored from seq 1 yet: no ack.
    const t = await s.ingest(batch(recs, 5, 3, { gate: 'g-2' }));
    assert.equal([t.stored, t.ack, t.problem], [3, null, 'gap_before']);
    await store.close();
  });

  test('chain checks: bad internal chain, broken join, different overlap, and a forged gap filler are refused whole', async () => {
    const store = await engine.store();
    const s = store.events;
    const recs = records(40, 3);
    assert.is((await s.ingest(batch(recs, 1, 5, { prev: new Uint8Array(32).fill(1) }))).problem, 'chain_break', 'seq 1 must start from 32 zero bytes');
    assert.is((await s.ingest(batch(recs, 1, 5, { chain: new Uint8Array(32) }))).problem, 'bad_chain');
    const short = { ...batch(recs, 1, 5), count: 6 };
    assert.is((await s.ingest(short)).problem, 'bad_length');
    assert.is(await s.count(), 0);
    await s.ingest(batch(recs, 1, 10));
    let r = await s.ingest(batch(recs, 11, 5, { prev: new Uint8Array(32).fill(9) }));
    assert.equal([r.stored, r.problem], [0, 'chain_break']);
    expectAck(r, 10, recs);
    const altered = recs.map((x) => x.slice());
    altered[7]![0]! ^= 1;
    r = await s.ingest(batch(altered, 5, 10, { prev: chainTo(recs, 4) }));
    assert.equal([r.stored, r.problem], [0, 'overlap_mismatch'], 'overlap differs: nothing stored, not even the new seqs');
    // Store 21..30 beyond a gap, then a filler 11..20 whose records differ: it cannot chain into 21.
    await s.ingest(batch(recs, 21, 10));
    const forged = recs.map((x) => x.slice());
    forged[14]![3]! ^= 0x80;
    r = await s.ingest(batch(forged, 11, 10, { prev: chainTo(recs, 10) }));
    assert.equal([r.stored, r.problem], [0, 'chain_break']);
    expectAck(r, 10, recs);
    r = await s.ingest(batch(recs, 11, 10));
    expectAck(r, 30, recs);
    assert.is(await s.count(), 30);
    await store.close();
  });

  test('exactly once under random cuts, duplicates and reordering; gates and epochs are separate', async () => {
    for (const seed of [11, 12, 13, 14]) {
      const rnd = mulberry32(seed);
      const store = await engine.store();
      const s = store.events;
      const streams = [
        { gate: 'g-a', epoch: 1, recs: records(300, seed) },
        { gate: 'g-a', epoch: 2, recs: records(120, seed + 100) },
        { gate: 'g-b', epoch: 1, recs: records(200, seed + 200) },
      ];
      const batches: ReturnType<typeof batch>[] = [];
      for (const st of streams) {
        let at = 1;
        while (at <= st.recs.length) {
          const n = Math.min(st.recs.length - at + 1, 1 + Math.floor(rnd() * 40));
          batches.push(batch(st.recs, at, n, { gate: st.gate, epoch: st.epoch }));
          if (rnd() < 0.3) batches.push(batch(st.recs, Math.max(1, at - 5), Math.min(n + 5, st.recs.length - Math.max(1, at - 5) + 1), { gate: st.gate, epoch: st.epoch }));
          at += n;
        }
      }
      // Shuffle, and deliver everything twice in different orders.
      const deliver = [...batches, ...batches].sort(() => rnd() - 0.5);
      let stored = 0;
      for (const b of deliver) {
        const r = await s.ingest(b);
        assert.ok(r.problem === undefined || r.problem === 'gap_before', `seed ${seed}: ${r.problem}`);
        stored += r.stored;
      }
      assert.is(stored, 620, 'each record stored exactly once');
      assert.is(await s.count(), 620);
      for (const st of streams) {
        const ack = await s.ack(st.gate, st.epoch);
        assert.equal(ack?.seq, st.recs.length);
        assert.ok(bytesEqual(ack!.chain, chainTo(st.recs, st.recs.length)));
        assert.is(await s.audit(st.gate, st.epoch), null);
      }
      await store.close();
    }
  });

  test('two writers on one database ingesting the same batches at once: each event stored once by (gate, epoch, seq), one ack', async () => {
    const target = await engine.fresh();
    const a = await openCentralStore(target, { create: true });
    const b = await openCentralStore(target);
    try {
      const recs = records(400, 21);
      const batches: ReturnType<typeof batch>[] = [];
      for (let first = 1; first <= 400; first += 8) batches.push(batch(recs, first, 8, { gate: 'g-two', epoch: 9 }));
      // Overlapping re-sends too (a gate resending from its last ack), and a second gate beside it.
      for (let first = 1; first <= 390; first += 40) batches.push(batch(recs, first, 12, { gate: 'g-two', epoch: 9 }));
      const other = records(100, 22);
      for (let first = 1; first <= 100; first += 10) batches.push(batch(other, first, 10, { gate: 'g-other', epoch: 1 }));
      // Each writer takes the batches in its own order (one reversed), all at once, so they meet everywhere.
      const [r1, r2] = await Promise.all([Promise.all(batches.map((m) => a.events.ingest(m))), Promise.all([...batches].reverse().map((m) => b.events.ingest(m)))]);
      const all = [...r1, ...r2];
      assert.equal(all.filter((r) => r.problem !== undefined && r.problem !== 'gap_before').map((r) => r.problem), [], 'no refusals');
      assert.is(all.reduce((n, r) => n + r.stored, 0), 500, 'each record stored by exactly one writer, once');
      assert.is(all.reduce((n, r) => n + r.stored + r.duplicates, 0), 2 * batches.reduce((n, m) => n + m.count, 0), 'every record of every batch stored or a duplicate');
      for (const s of [a.events, b.events]) {
        assert.is(await s.count('g-two'), 400);
        assert.is(await s.count(), 500);
        const ack = await s.ack('g-two', 9);
        assert.equal([ack?.seq, toHex(ack?.chain ?? new Uint8Array())], [400, toHex(chainTo(recs, 400))]);
        assert.is((await s.ack('g-other', 1))?.seq, 100);
        assert.is(await s.audit('g-two', 9), null);
        assert.is(await s.conflictCount(), 0);
      }
      const rows = await a.events.export('g-two', 9);
      assert.equal(
        rows.map((r) => r.seq),
        range(1, 400),
      );
      rows.forEach((r, i) => assert.ok(bytesEqual(r.record, recs[i]!), `seq ${r.seq}`));
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('ingest of many batches stores every event once (speed: npm run bench -- sync)', async () => {
    const store = await engine.store();
    const s = store.events;
    const total = 40_960;
    const recs = records(total, 5);
    const batches: ReturnType<typeof batch>[] = [];
    let prev: Uint8Array = new Uint8Array(32);
    for (let at = 1; at <= total; at += 256) {
      batches.push(batch(recs, at, 256, { prev })); // chained from the batch before (no chain from seq 1 per batch)
      prev = batches[batches.length - 1]!.chain;
    }
    for (const b of batches) await s.ingest(b);
    assert.is(await s.count(), total);
    assert.is((await s.export()).length, total);
    await store.close();
  });
});

// ---------------------------------------------------------------- schema versions

engineSuites('central schema', (test, engine) => {
  test('a database of a newer schema is refused, saying to upgrade subline, and nothing is changed', async () => {
    const target = await engine.fresh();
    const s = await openCentralStore(target, { create: true, registry: registryOptions() });
    assert.equal(s.migration, { from: null, to: SCHEMA_VERSION, steps: [`created schema ${SCHEMA_VERSION}`] });
    await s.registry.addSubject({ id: 'p-1', kind: 'person', name: 'A' });
    await s.registry.addCredential({ subject: 'p-1', kind: 'card', rawId: '01' });
    const newer = SCHEMA_VERSION + 1;
    assert.is(await s.db.run("UPDATE meta SET value = ? WHERE key = 'schema'", [String(newer)]), 1);
    const before = await dump(s.db);
    await s.close();
    const refusedNewer = (e: unknown, what: string) => {
      assert.instance(e, SchemaError, what);
      const err = e as SchemaError;
      assert.equal([err.code, err.version], ['newer', newer], what);
      assert.ok(err.message.includes('upgrade subline'), `${what}: ${err.message}`);
      assert.ok(err.message.includes(`schema ${newer}`), `${what} names the version: ${err.message}`);
    };
    refusedNewer(await rejection(openCentralStore(target, { registry: registryOptions() }), 'open'), 'open');
    refusedNewer(await rejection(openCentralStore(target, { create: true, registry: registryOptions() }), 'open with create'), 'open with create (migrate)');
    refusedNewer(
      await rejection(Central.open({ db: target, signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey, gateMasterKey: KEYS.gateMasterKey, brokerUrl: 'mqtt://127.0.0.1:1' }), 'Central.open'),
      'Central.open',
    );
    const db = await openDb(target);
    try {
      refusedNewer(await rejection(checkSchema(db), 'checkSchema'), 'checkSchema');
      refusedNewer(await rejection(migrate(db), 'migrate'), 'migrate');
      assert.is(await schemaVersion(db), newer);
      assert.is(await dump(db), before, 'nothing changed');
    } finally {
      await db.close();
    }
  });

  test('an empty database or one without a central is refused, saying to run init', async () => {
    const target = await engine.fresh();
    if (engine.name === 'sqlite') new Database(target).close(); // an empty SQLite file exists; PostgreSQL: an empty database
    const e = await rejection(openCentralStore(target, { registry: registryOptions() }), 'open');
    assert.ok(e instanceof Error && /central init/.test(e.message), String(e));
    const db = await openDb(target, { create: true });
    try {
      refusedInit(await rejection(checkSchema(db), 'checkSchema'));
      assert.equal([...(await db.tables())], [], 'nothing created');
    } finally {
      await db.close();
    }
    function refusedInit(x: unknown): void {
      assert.instance(x, SchemaError);
      assert.is((x as SchemaError).code, 'not_initialised');
      assert.ok((x as Error).message.includes('subline central init'), (x as Error).message);
    }
  });
});

// ---------------------------------------------------------------- SQLite only

const lite = suite('central store on SQLite');

lite('a schema 1 database (older builds) is refused, saying to run `subline central migrate`; migrate brings it to the current schema with the columns present', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-schema1-'));
  try {
    const path = join(dir, 'central.db');
    // The layout of schema 1: the registry's tables without credentials.revoked_at and
    // lists.capacity, the presence table before journal/conn/refused, no event tables.
    const old = new Database(path);
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE industries (id INTEGER PRIMARY KEY, name TEXT NOT NULL, code TEXT NOT NULL UNIQUE);
      CREATE TABLE institutions (id INTEGER PRIMARY KEY, name TEXT NOT NULL, industry INTEGER REFERENCES industries(id));
      CREATE TABLE subjects (id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('person', 'vehicle', 'goods')), institution INTEGER REFERENCES institutions(id), name TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE credentials (key BLOB PRIMARY KEY CHECK (length(key) = 8), subject TEXT NOT NULL REFERENCES subjects(id), kind TEXT NOT NULL CHECK (kind IN ('card', 'uhf')), revoked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE INDEX credentials_subject ON credentials(subject);
      CREATE TABLE grants (id INTEGER PRIMARY KEY, spec TEXT, record BLOB UNIQUE);
      CREATE TABLE grant_assignments (level TEXT NOT NULL, target TEXT NOT NULL, grant_id INTEGER NOT NULL REFERENCES grants(id), PRIMARY KEY (level, target)) WITHOUT ROWID;
      CREATE TABLE suspensions (level TEXT NOT NULL, target TEXT NOT NULL, active INTEGER NOT NULL, PRIMARY KEY (level, target)) WITHOUT ROWID;
      CREATE TABLE schedules (id INTEGER PRIMARY KEY, bytes BLOB NOT NULL CHECK (length(bytes) = 48));
      CREATE TABLE lists (name TEXT PRIMARY KEY, epoch INTEGER NOT NULL, version INTEGER NOT NULL);
      CREATE TABLE deltas (list TEXT NOT NULL REFERENCES lists(name), epoch INTEGER NOT NULL, version INTEGER NOT NULL, issued_at INTEGER NOT NULL, envelope BLOB NOT NULL, records BLOB NOT NULL, PRIMARY KEY (list, epoch, version)) WITHOUT ROWID;
      CREATE TABLE gates (gate TEXT PRIMARY KEY, state TEXT NOT NULL, boot INTEGER NOT NULL, at INTEGER NOT NULL, firmware TEXT NOT NULL, line TEXT NOT NULL, direction TEXT NOT NULL, lane TEXT NOT NULL, lists TEXT NOT NULL, backlog INTEGER NOT NULL, received_at INTEGER NOT NULL, last_seen INTEGER NOT NULL) WITHOUT ROWID;
    `);
    const key = credentialKey(nodeCrypto, KEYS.deploymentKey, 1, Uint8Array.from([0x04, 0xa1]));
    old.prepare("INSERT INTO meta (key, value) VALUES ('schema', '1')").run();
    old.prepare("INSERT INTO subjects (id, kind, institution, name) VALUES ('p-1', 'person', NULL, 'Old')").run();
    old.prepare("INSERT INTO credentials (key, subject, kind, revoked) VALUES (?, 'p-1', 'card', 0)").run(Buffer.from(key));
    old.prepare("INSERT INTO lists (name, epoch, version) VALUES ('main', ?, 3)").run(T0);
    old.prepare("INSERT INTO gates VALUES ('g-1', 'online', 4, ?, 'fw', 'first', 'in', 'person', '[]', 2, ?, ?)").run(T0, T0 + 1, T0 + 2);
    old.close();

    const db = await openDb(path);
    let before: string;
    try {
      before = await dump(db);
      const e = await rejection(checkSchema(db), 'checkSchema');
      assert.instance(e, SchemaError);
      assert.equal([(e as SchemaError).code, (e as SchemaError).version], ['older', 1]);
      assert.ok((e as Error).message.includes('run `subline central migrate`'), (e as Error).message);
    } finally {
      await db.close();
    }
    const e = await rejection(openCentralStore(path, { registry: registryOptions() }), 'open');
    assert.instance(e, SchemaError);
    assert.is((e as SchemaError).code, 'older');
    assert.ok((e as Error).message.includes('run `subline central migrate`'), (e as Error).message);
    const again = await openDb(path);
    try {
      assert.is(await dump(again), before, 'the refusal changed nothing');
      assert.not.ok((await again.columns('credentials')).has('revoked_at'));

      const m = await migrate(again);
      assert.equal([m.from, m.to, m.steps.length], [1, SCHEMA_VERSION, SCHEMA_VERSION - 1]);
      for (const c of ['credentials.revoked_at', 'lists.capacity', 'gates.journal', 'gates.conn', 'gates.refused', 'events', 'event_heads', 'gate_identities']) assert.ok(m.steps[0]!.includes(c), `${c} in: ${m.steps[0]}`);
      assert.is(await schemaVersion(again), SCHEMA_VERSION);
      await checkSchema(again);
      assert.ok((await again.columns('credentials')).has('revoked_at'));
      assert.ok((await again.columns('lists')).has('capacity'));
      for (const c of ['journal', 'conn', 'refused']) assert.ok((await again.columns('gates')).has(c), `gates.${c}`);
      for (const t of ['events', 'event_heads', 'event_conflicts', 'published', 'gate_identities', 'refusals', 'central_meta']) assert.ok((await again.tables()).has(t), t);
      const m2 = await migrate(again);
      assert.equal([m2.from, m2.to, m2.steps], [SCHEMA_VERSION, SCHEMA_VERSION, []], 'a second migrate has nothing to do');
    } finally {
      await again.close();
    }
    // The data came through, and the new columns work.
    const s = await openCentralStore(path, { registry: registryOptions() });
    try {
      assert.equal([(await s.registry.list('main')).version, (await s.registry.list('main')).epoch], [3, T0]);
      assert.equal((await s.registry.credential({ key }))?.subject, 'p-1');
      assert.is(await s.registry.capacity('main'), 250_000);
      await s.registry.revokeCredential({ key });
      assert.is((await s.db.get<{ revoked_at: number }>('SELECT revoked_at FROM credentials'))?.revoked_at, T0);
      assert.is(await s.registry.version(), 4);
      const g = await s.state.gate('g-1');
      assert.equal([g?.status.boot, g?.status.journal, g?.status.conn, g?.status.refused, g?.lastSeen], [4, 0, 0, [], T0 + 2]);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------- keys and crypto

const ks = suite('central keys');

ks('key file: round trip, mode 0600, refuses to overwrite, clear errors when missing or corrupt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'subline-keys-'));
  try {
    const path = join(dir, 'central.keys.json');
    const keys = Central.generateKeys();
    writeKeyFile(path, keys);
    assert.is(statSync(path).mode & 0o777, 0o600);
    const back = readKeyFile(path);
    assert.ok(bytesEqual(back.signingKey, keys.signingKey) && bytesEqual(back.deploymentKey, keys.deploymentKey) && bytesEqual(back.publicKey, keys.publicKey));
    assert.throws(() => writeKeyFile(path, generateKeys()), /already exists/);
    writeKeyFile(path, KEYS, { overwrite: true });
    assert.ok(bytesEqual(readKeyFile(path).publicKey, KEYS.publicKey));
    const err = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        assert.instance(e, KeyFileError);
        return (e as Error).message;
      }
      return 'no error';
    };
    assert.match(err(() => readKeyFile(join(dir, 'missing.json'))), /not found/);
    writeFileSync(path, '{"format": "subline-central-keys", "vers');
    assert.match(err(() => readKeyFile(path)), /not valid JSON/);
    writeFileSync(path, JSON.stringify({ format: 'subline-central-keys', version: 2, signingKey: 'zz', deploymentKey: toHex(KEYS.deploymentKey), gateMasterKey: toHex(KEYS.gateMasterKey) }));
    assert.match(err(() => readKeyFile(path)), /signingKey/);
    writeFileSync(path, JSON.stringify({ format: 'subline-central-keys', version: 2, signingKey: toHex(KEYS.signingKey), publicKey: toHex(new Uint8Array(32)), deploymentKey: toHex(KEYS.deploymentKey), gateMasterKey: toHex(KEYS.gateMasterKey) }));
    assert.match(err(() => readKeyFile(path)), /publicKey/);
    writeFileSync(path, JSON.stringify({ format: 'subline-central-keys', version: 2, signingKey: toHex(KEYS.signingKey), deploymentKey: toHex(KEYS.deploymentKey) }));
    assert.match(err(() => readKeyFile(path)), /gateMasterKey/);
    // A key file from before gate authentication: refused with what to do, never a silent new master key.
    writeFileSync(path, JSON.stringify({ format: 'subline-central-keys', version: 1, signingKey: toHex(KEYS.signingKey), deploymentKey: toHex(KEYS.deploymentKey) }));
    assert.match(err(() => readKeyFile(path)), /version 1, from before gate authentication.*central init/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

ks('node crypto: SHA-256 and Ed25519 signatures identical to the noble implementation the gate uses', () => {
  const s = new Ed25519Signer(KEYS.signingKey);
  const msg = new TextEncoder().encode('subline');
  assert.ok(bytesEqual(s.sign(msg), signEd25519(msg, KEYS.signingKey)));
  assert.ok(bytesEqual(nodeCrypto.sha256(msg), nobleCrypto.sha256(msg)));
  const head: HeadMessage = { list: 'main', epoch: 1, version: 2, issuedAt: T0, expires: T0 + 60, imageSize: 64, chunkSize: 16384, imageRoot: new Uint8Array(32) };
  assert.ok(bytesEqual(s.seal(Head, head), sealSigned(Head, head, KEYS.signingKey, nobleCrypto)));
  assert.ok(openSigned(Head, s.seal(Head, head), RING).ok);
});

// ---------------------------------------------------------------- end to end

/** A gate made of MQTT.js: records what arrives, in order, and waits for things. */
class FakeGate {
  readonly client: MqttClient;
  readonly log: { topic: string; payload: Uint8Array }[] = [];
  readonly #waiters = new Set<() => void>();
  constructor(
    readonly url: string,
    readonly topics: Topics,
    readonly gate: string,
    /** The gate's MAC key and kid (from Central.provisionGate), or none for an impostor. */
    readonly id: { readonly gateKey: Uint8Array; readonly gateKeyId: number } = { gateKey: new Uint8Array(32), gateKeyId: 1 },
  ) {
    this.client = mqtt.connect(url, { clientId: `fake-${gate}-${Math.random().toString(16).slice(2)}`, clean: true, reconnectPeriod: 0 });
    this.client.on('message', (topic, payload) => {
      this.log.push({ topic, payload: new Uint8Array(payload) });
      for (const w of this.#waiters) w();
    });
    this.client.on('error', () => {});
  }
  async ready(): Promise<void> {
    if (!this.client.connected) await new Promise<void>((resolve) => this.client.once('connect', () => resolve()));
    const t = this.topics;
    await this.client.subscribeAsync([t.list('main', 'head'), t.list('main', 'delta'), t.gate(this.gate, 'data'), t.gate(this.gate, 'ack')], { qos: 1 });
  }
  /** Resolves with the first message from index `from` on that satisfies pred. */
  async next(pred: (m: { topic: string; payload: Uint8Array }) => boolean, from = 0, timeoutMs = 5000): Promise<{ topic: string; payload: Uint8Array; index: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.log.length; i++) if (pred(this.log[i]!)) return { ...this.log[i]!, index: i };
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake gate ${this.gate}: nothing matched within ${timeoutMs} ms (${this.log.length} messages)`);
      await new Promise<void>((resolve) => {
        const w = () => {
          clearTimeout(timer);
          this.#waiters.delete(w);
          resolve();
        };
        const timer = setTimeout(w, Math.min(left, 200));
        this.#waiters.add(w);
      });
    }
  }
  publish(topic: string, payload: Uint8Array, retain = false): Promise<unknown> {
    return this.client.publishAsync(topic, Buffer.from(payload), { qos: 1, retain });
  }
  /** Publishes a message MACed with this gate's key for its topic. */
  send<M extends MessageSchema>(kind: 'sync' | 'events' | 'status' | 'cmdres', schema: M, value: MessageOf<M>, retain = false): Promise<unknown> {
    const topic = this.topics.gate(this.gate, kind);
    return this.publish(topic, sealMaced(schema, value, topic, this.id.gateKey, this.id.gateKeyId, nodeCrypto), retain);
  }
  /** Opens an ack MACed for this gate. */
  ack(payload: Uint8Array): MessageOf<typeof EventAck> {
    const r = openMaced(EventAck, payload, this.topics.gate(this.gate, 'ack'), (kid) => (kid === this.id.gateKeyId ? this.id.gateKey : null), nodeCrypto);
    if (!r.ok) throw new Error(`ack: ${r.error.code} ${r.error.field}`);
    return r.value;
  }
  request(q: Omit<SyncRequestMessage, 'gate' | 'list'>): Promise<unknown> {
    return this.send('sync', SyncRequest, { gate: this.gate, list: 'main', ...q });
  }
  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function headOf(payload: Uint8Array): HeadMessage {
  const r = openSigned(Head, payload, RING);
  if (!r.ok) throw new Error(`head: ${r.error.code} ${r.error.field}`);
  return r.value;
}

function status(gate: string, state: 'online' | 'offline', boot: number, at: number, journal = 1, conn = 1): GateStatusMessage {
  return { gate, state, journal, boot, conn, at, firmware: 'test', line: 'first', direction: 'in', lane: 'person', lists: [], backlog: 0, refused: [] };
}

async function seed(r: Registry): Promise<void> {
  await r.bulk(async (b) => {
    await b.addIndustry({ name: 'Next-generation information technology', code: 'ngit' });
    await b.addInstitution({ name: 'Future Networks Institute', industry: 0 });
    await b.grant('institution', 0, ALL);
    for (let i = 0; i < 40; i++) {
      await b.addSubject({ id: `p-${i}`, kind: 'person', institution: 0, name: `Researcher ${i}` });
      await b.addCredential({ subject: `p-${i}`, kind: 'card', rawId: `04${i.toString(16).padStart(6, '0')}` });
    }
  });
}

async function endToEnd(broker: BrokerHandle, engine: Engine): Promise<void> {
  const root = `t${Math.floor(Math.random() * 1e9)}/central`;
  const topics = new Topics(root);
  const store = await openRegistry(engine);
  const r = store.registry;
  await seed(r);
  const central = await Central.open({ db: store, signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey, gateMasterKey: KEYS.gateMasterKey, brokerUrl: broker.url, topicRoot: root, headIntervalSeconds: 0.25, chunkSize: 256 });
  const gate = new FakeGate(broker.url, topics, 'g-1', await central.provisionGate({ gate: 'g-1', site: 's', list: 'main', line: 'first', direction: 'in', lane: 'person' }));
  try {
    await central.start();
    await gate.ready();
    const isHead = (m: { topic: string }) => m.topic === topics.list('main', 'head');
    // 1. the retained head, signed, naming the current version
    const h0 = headOf((await gate.next(isHead)).payload);
    assert.equal([h0.list, h0.epoch, h0.version, h0.chunkSize, h0.expires - h0.issuedAt], ['main', (await r.list()).epoch, await r.version(), 256, 86400]);
    // 2. manifest bound by imageRoot, chunks bound by the manifest, image = the registry's
    const isData = (t: string) => (m: { topic: string; payload: Uint8Array }) => m.topic === topics.gate('g-1', 'data') && peekType(m.payload) === t;
    let mark = gate.log.length;
    await gate.request({ epoch: h0.epoch, want: 'manifest', version: h0.version, from: 0, count: 1 });
    const mf = decodeManifest((await gate.next(isData('manifest'), mark)).payload);
    assert.ok(mf.ok);
    if (!mf.ok) return;
    assert.ok(bytesEqual(nodeCrypto.sha256(mf.value.hashes), h0.imageRoot), 'SHA-256(hashes) = imageRoot');
    assert.equal([mf.value.version, mf.value.imageSize, mf.value.chunkSize], [h0.version, h0.imageSize, 256]);
    const n = mf.value.hashes.length / 32;
    assert.ok(n > 2, 'several chunks');
    mark = gate.log.length;
    await gate.request({ epoch: h0.epoch, want: 'chunks', version: h0.version, from: 0, count: Math.min(n, 64) });
    const image = new Uint8Array(h0.imageSize);
    for (let i = 0; i < n; i++) {
      const m = await gate.next((x) => isData('chunk')(x) && decodeChunk(x.payload).ok && (decodeChunk(x.payload) as { value: { index: number } }).value.index === i, mark);
      const c = decodeChunk(m.payload);
      assert.ok(c.ok);
      if (!c.ok) return;
      assert.ok(bytesEqual(nodeCrypto.sha256(c.value.data), mf.value.hashes.subarray(i * 32, i * 32 + 32)), `chunk ${i} hash`);
      image.set(c.value.data, i * 256);
    }
    assert.ok(bytesEqual(image, buildImageFromTables(await r.tables())), 'the chunks make the exact image of the version');
    // 3. a revocation: the delta first, then the head of the new version
    mark = gate.log.length;
    const revoked = r.credentialKey('card', '04000007');
    await r.revokeCredential({ kind: 'card', rawId: '04000007' });
    const dm = await gate.next((m) => m.topic === topics.list('main', 'delta'), mark);
    const d = openSigned(Delta, dm.payload, RING);
    assert.ok(d.ok);
    if (!d.ok) return;
    assert.equal([d.value.version, decodeRecords(d.value.records)], [h0.version + 1, [`revoke ${toHex(revoked)}`]]);
    const hm = await gate.next((m) => isHead(m) && headOf(m.payload).version === h0.version + 1, mark);
    assert.ok(hm.index > dm.index, 'the delta goes out before the new head');
    const h1 = headOf(hm.payload);
    assert.not.ok(bytesEqual(h1.imageRoot, h0.imageRoot));
    // 4. deltas on request: the same bytes as broadcast; chunks of a recent superseded image are still
    //    served (a gate finishes its pull, then catches up); a version never built: nothing
    mark = gate.log.length;
    await gate.request({ epoch: h0.epoch, want: 'deltas', version: h0.version, from: h0.version + 1, count: 8 });
    const dr = await gate.next(isData('signed'), mark);
    assert.ok(bytesEqual(dr.payload, dm.payload));
    mark = gate.log.length;
    await gate.request({ epoch: h0.epoch, want: 'chunks', version: h0.version, from: 0, count: 1 });
    await gate.next(isData('chunk'), mark);
    const notRecent = central.stats.rejected['sync.not_recent'] ?? 0;
    await gate.request({ epoch: h0.epoch, want: 'chunks', version: h0.version + 1000, from: 0, count: 1 });
    await until(() => (central.stats.rejected['sync.not_recent'] ?? 0) === notRecent + 1, 'a refused chunk request');
    // 5. events: acks with the chain; duplicates acked again, stored once
    const recs = records(12, 77);
    const ackOf = async (b: ReturnType<typeof batch>) => {
      const from = gate.log.length;
      await gate.send('events', EventBatch, b);
      return gate.ack((await gate.next((m) => m.topic === topics.gate('g-1', 'ack'), from)).payload);
    };
    let a = await ackOf(batch(recs, 1, 5, { gate: 'g-1', epoch: 3 }));
    assert.equal([a?.gate, a?.epoch, a?.seq], ['g-1', 3, 5]);
    assert.ok(bytesEqual(a.chain, chainTo(recs, 5)));
    a = await ackOf(batch(recs, 1, 5, { gate: 'g-1', epoch: 3 }));
    assert.is(a?.seq, 5);
    a = await ackOf(batch(recs, 4, 9, { gate: 'g-1', epoch: 3 }));
    assert.is(a?.seq, 12);
    assert.ok(bytesEqual(a.chain, chainTo(recs, 12)));
    assert.is(await central.events.count('g-1'), 12);
    assert.equal([central.stats.ingest.stored, central.stats.ingest.duplicates], [12, 7]);
    // 6. presence: ordered by (journal epoch, boot, conn); for one connection the will beats its birth, never the reverse
    const st = (v: GateStatusMessage) => gate.send('status', GateStatus, v, true);
    await st(status('g-1', 'online', 5, T0 + 100));
    await until(() => central.presence('g-1')?.status.boot === 5, 'birth');
    await st(status('g-1', 'offline', 4, T0 + 500));
    await until(() => central.stats.presenceIgnored === 1, 'late death ignored');
    assert.equal([central.presence('g-1')?.status.state, central.presence('g-1')?.status.boot], ['online', 5], 'a late death with an older boot is ignored');
    await st(status('g-1', 'offline', 5, T0 + 100));
    await until(() => central.presence('g-1')?.status.state === 'offline', 'the will of the same connection');
    await st(status('g-1', 'online', 5, T0 + 200));
    await until(() => central.stats.presenceIgnored === 2, 'a replayed birth after its will ignored');
    assert.is(central.presence('g-1')?.status.state, 'offline', 'death after birth: a replay of the birth does not revive the gate');
    await st(status('g-1', 'online', 5, T0 + 50, 1, 2));
    await until(() => central.presence('g-1')?.status.conn === 2, 'a reconnect within the boot');
    await st(status('g-1', 'offline', 5, T0 + 100, 1, 1));
    await until(() => central.stats.presenceIgnored === 3, 'a replayed will of the earlier connection ignored');
    assert.is(central.presence('g-1')?.status.state, 'online');
    await st(status('g-1', 'online', 6, T0 + 1));
    await until(() => central.presence('g-1')?.status.boot === 6, 'a reboot');
    // A reflashed gate starts its boot counter again, in a newer journal epoch: it wins.
    await st(status('g-1', 'online', 1, T0 + 2, 2));
    await until(() => central.presence('g-1')?.status.journal === 2, 'a reflash');
    await st(status('g-1', 'offline', 6, T0 + 900, 1));
    await until(() => central.stats.presenceIgnored === 4, 'the old epoch ignored');
    assert.equal([central.presence('g-1')?.status.state, central.presence('g-1')?.status.boot], ['online', 1]);
    // 7. garbage never stops it, and is counted
    const rejectedBefore = Object.values(central.stats.rejected).reduce((x, y) => x + y, 0);
    const rnd = mulberry32(99);
    const junk = () => Uint8Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256));
    let sent = 0;
    for (const kind of ['events', 'sync', 'status', 'cmdres'] as const) {
      for (let i = 0; i < 5; i++, sent++) await gate.publish(topics.gate('x', kind), junk());
    }
    await gate.publish(`${root}/v1/gates/NOT_AN_ID/events`, junk());
    sent++;
    await gate.publish(topics.gate('x', 'status'), new Uint8Array(0), true); // clear the retained junk
    sent++;
    await gate.publish(topics.gate('g-2', 'events'), encodeEventBatch(batch(recs, 1, 2, { gate: 'g-1' })));
    sent++;
    // MACed by g-1 but naming g-2 in the body: the body's gate must be the topic's.
    await gate.send('events', EventBatch, batch(recs, 1, 2, { gate: 'g-2' }));
    sent++;
    await until(() => Object.values(central.stats.rejected).reduce((x, y) => x + y, 0) >= rejectedBefore + sent, 'garbage counted');
    assert.ok((central.stats.rejected['topic.bad_topic'] ?? 0) >= 1);
    assert.ok((central.stats.rejected['events.gate_mismatch'] ?? 0) >= 1);
    assert.is(central.stats.rejected['internal.exception'], undefined, 'no exception escaped a handler');
    mark = gate.log.length;
    await gate.request({ epoch: h1.epoch, want: 'manifest', version: h1.version, from: 0, count: 1 });
    await gate.next(isData('manifest'), mark);
    // 8. the heartbeat: the same version re-signed
    mark = gate.log.length;
    const beat = await gate.next((m) => isHead(m) && headOf(m.payload).version === h1.version, mark, 3000);
    assert.ok(headOf(beat.payload).issuedAt >= h1.issuedAt);
    assert.ok(central.stats.published.heads >= 3);
  } finally {
    await gate.close();
    await central.close();
    await store.close();
  }
}


engineSuites('central end to end', (test, engine) => {
  test('against the embedded broker (aedes)', async () => {
    const broker = await startEmbeddedBroker({ port: 0 });
    try {
      await endToEnd(broker, engine);
    } finally {
      await broker.close();
    }
  });

  test('against Mosquitto', async () => {
    const broker = await startMosquitto({ port: 0 });
    try {
      await endToEnd(broker, engine);
    } finally {
      await broker.close();
    }
  });

  test('broker stop and restart: the central reconnects and publishes its head again', async () => {
    let broker = await startEmbeddedBroker({ port: 0 });
    const port = broker.port;
    const root = 'restart';
    const central = await Central.open({ db: await engine.fresh(), signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey, gateMasterKey: KEYS.gateMasterKey, brokerUrl: broker.url, topicRoot: root });
    try {
      await central.start();
      await central.registry.addSubject({ id: 'p-1', kind: 'person', name: 'A' }); // a change while connected
      await broker.close();
      await until(() => !central.connected, 'disconnect noticed');
      await central.registry.addSubject({ id: 'p-2', kind: 'person', name: 'B' }); // a change while the broker is down: no crash
      broker = await startEmbeddedBroker({ port });
      await until(() => central.connected, 'reconnected', 8000);
      const gate = new FakeGate(broker.url, new Topics(root), 'g-9');
      try {
        await gate.ready();
        const h = headOf((await gate.next((m) => m.topic === `${root}/v1/lists/main/head`)).payload);
        await until(() => central.head?.version === 2, 'head of version 2');
        const latest = h.version === 2 ? h : headOf((await gate.next((m) => m.topic === `${root}/v1/lists/main/head` && headOf(m.payload).version === 2)).payload);
        assert.is(latest.version, 2);
        assert.ok(central.stats.connects >= 2);
      } finally {
        await gate.close();
      }
    } finally {
      await central.close();
      await broker.close();
    }
  });

  test('start fails clearly without a broker; close is idempotent', async () => {
    const probe = await startEmbeddedBroker();
    const url = probe.url;
    await probe.close();
    const central = await Central.open({ db: await engine.fresh(), signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey, gateMasterKey: KEYS.gateMasterKey, brokerUrl: url, connectTimeoutMs: 500 });
    try {
      await central.start();
      assert.unreachable('no broker');
    } catch (e) {
      assert.match((e as Error).message, /no connection/);
    }
    await central.close();
    await central.close();
    const closing = await Central.open({ db: await engine.fresh(), signingKey: KEYS.signingKey, deploymentKey: KEYS.deploymentKey, gateMasterKey: KEYS.gateMasterKey, brokerUrl: url, connectTimeoutMs: 60_000 });
    const started = closing.start().then(
      () => 'started',
      (e: Error) => e.message,
    );
    await closing.close();
    // Bounded: a start that neither resolves nor rejects fails here rather than stopping the run.
    const settled = await Promise.race([started, new Promise<string>((resolve) => setTimeout(() => resolve('start() still pending 10 s after close()'), 10_000).unref())]);
    assert.match(settled, /closed while starting/);
  });
});

ks.run();
lite.run();
