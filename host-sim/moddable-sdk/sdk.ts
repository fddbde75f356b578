// The Moddable SDK on this host: finds it ($MODDABLE), runs mcconfig with the
// project's own tsc on PATH, and builds the x-cli-lin programs that run device
// code on the SDK's XS (test/sdk/, bench/sdk/). docs/FLASHING.md says how to
// install the SDK; docs/TESTING.md what is checked with it.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HERE = 'host-sim/moddable-sdk';

export type SdkLocation = { ok: true; moddable: string; bin: string } | { ok: false; reason: string };

/** Where the SDK is, or why it cannot be used (the reason is printed as is). */
export function locateSdk(env: NodeJS.ProcessEnv = process.env): SdkLocation {
  const moddable = env.MODDABLE;
  if (moddable === undefined || moddable === '') return { ok: false, reason: 'MODDABLE is not set; install the Moddable SDK as docs/FLASHING.md says' };
  const bin = join(moddable, 'build', 'bin', 'lin', 'release');
  for (const tool of ['mcconfig', 'xsc', 'xsl']) {
    if (!existsSync(join(bin, tool))) return { ok: false, reason: `MODDABLE=${moddable} has no ${join('build/bin/lin/release', tool)}; build or extract the SDK's host tools (docs/FLASHING.md)` };
  }
  if (!existsSync(join(ROOT, 'node_modules', '.bin', 'tsc'))) return { ok: false, reason: 'node_modules/.bin/tsc is missing; run npm install' };
  return { ok: true, moddable, bin };
}

export class SdkError extends Error {}

function mustLocate(): { moddable: string; bin: string } {
  const at = locateSdk();
  if (!at.ok) throw new SdkError(at.reason);
  return at;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a program to its end; output is collected (and echoed to `log` when given). */
export function run(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; log?: (chunk: string) => void } = {}): Promise<RunResult> {
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      options.log?.(d.toString('utf8'));
    });
    child.stderr.on('data', (d: Buffer) => {
      err.push(d);
      options.log?.(d.toString('utf8'));
    });
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code: code ?? (signal !== null ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: performance.now() - t0 }));
  });
}

/** mcconfig with MODDABLE set and the project's tsc first on PATH (TypeScript 6.0.x, as the SDK's generated tsconfig needs). */
export async function mcconfig(args: readonly string[], log?: (chunk: string) => void): Promise<RunResult> {
  const sdk = mustLocate();
  const env = { ...process.env, MODDABLE: sdk.moddable, PATH: [join(ROOT, 'node_modules', '.bin'), sdk.bin, process.env.PATH ?? ''].join(':') };
  return run(join(sdk.bin, 'mcconfig'), args, { env, ...(log === undefined ? {} : { log }) });
}

// ---- the firmware manifest ----

export interface Creation {
  static?: number;
  chunk?: { initial: number; incremental?: number };
  heap?: { initial: number; incremental?: number };
  stack?: number;
  main?: string;
}

interface FirmwareManifest {
  modules: Record<string, string>;
  creation: Creation;
  typescript?: { tsconfig?: { compilerOptions?: { types?: string[] } } };
}

export function firmwareManifest(): FirmwareManifest {
  return JSON.parse(readFileSync(join(ROOT, 'manifest.json'), 'utf8')) as FirmwareManifest;
}

/** The modules of the firmware manifest an x-cli program can hold: all but the device entry (it needs mc/config and a device provider). */
export function firmwareModules(): Record<string, string> {
  const m = firmwareManifest();
  const main = m.creation.main ?? 'main';
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.modules)) if (k !== main) out[k] = v;
  return out;
}

// ---- modules an x-cli program adds ----

const IMPORT_RE = /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/g;

/** Import and re-export specifiers of a source file (type-only ones included; comments removed first). */
export function importsOf(file: string): string[] {
  const src = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  for (let m = IMPORT_RE.exec(src); m !== null; m = IMPORT_RE.exec(src)) out.push(m[1] as string);
  return out;
}

/**
 * The repository modules reached from `entry` through relative imports, keyed
 * by their repository path without extension (the key XS resolves a relative
 * import to when every module's key is its path), as manifest entries.
 */
export function reachedModules(entry: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (file: string): void => {
    const key = relative(ROOT, file).replace(/\\/g, '/').replace(/\.(ts|js)$/, '');
    if (out[key] !== undefined) return;
    out[key] = `./${key}`;
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const base = resolve(dirname(file), spec.replace(/\.js$/, ''));
      const onDisk = [`${base}.ts`, `${base}.js`].find((f) => existsSync(f));
      if (onDisk === undefined) throw new SdkError(`${relative(ROOT, file)} imports "${spec}", which is not a file here`);
      visit(onDisk);
    }
  };
  visit(resolve(ROOT, entry));
  return out;
}

// ---- building ----

export interface ProgramOptions {
  /** Program name (the binary's file name). */
  readonly name: string;
  /** The app's entry module, repository-relative (.ts). */
  readonly entry: string;
  /** Build directory (created; the manifest and the SDK's output go there). */
  readonly outDir: string;
  /** Creation overrides on top of the firmware's (e.g. a larger chunk heap for a 250k image). */
  readonly creation?: Creation;
  /** Extra SDK manifests to include (e.g. the crypt Digest). */
  readonly include?: readonly string[];
  /** Extra manifest modules (e.g. the lin TCP socket and timers, which no x-cli platform brings). */
  readonly modules?: Readonly<Record<string, string | readonly string[]>>;
  readonly log?: (chunk: string) => void;
}

export interface BuiltProgram {
  readonly binary: string;
  readonly manifest: string;
  readonly creation: Creation;
  readonly ms: number;
}

/**
 * Writes the program's manifest and builds it with `mcconfig -m -p x-cli-lin`.
 * The manifest holds the firmware manifest's modules (what is flashed, minus
 * its entry), its creation sizes and TypeScript settings, manifest_base's
 * `strip`, and the modules the entry reaches; program.c supplies main().
 */
export async function buildProgram(o: ProgramOptions): Promise<BuiltProgram> {
  mustLocate();
  const fw = firmwareManifest();
  const entryKey = o.entry.replace(/\.ts$/, '');
  const creation: Creation = { ...fw.creation, ...o.creation, main: entryKey };
  // The entry keeps its path as its key (its relative imports resolve against it); creation.main names it.
  const extra = { ...o.modules };
  const extraStar = extra['*'];
  delete extra['*'];
  const modules: Record<string, string | readonly string[]> = {
    ...firmwareModules(),
    ...reachedModules(o.entry),
    ...extra,
    'sdk-host': `./${HERE}/sdk-host`,
    // manifest_base brings the resource module, which needs mcGetResource (mc platforms only).
    '~': ['$(MODULES)/files/resource/*'],
    '*': [`./${HERE}/program`, ...(extraStar === undefined ? [] : typeof extraStar === 'string' ? [extraStar] : extraStar)],
  };
  const manifest = {
    _comment: `Generated by ${HERE}/sdk.ts for ${o.entry}: do not edit.`,
    build: { NAME: o.name },
    include: ['$(MODDABLE)/examples/manifest_base.json', '$(MODDABLE)/examples/manifest_typings.json', ...(o.include ?? [])],
    modules,
    creation,
    typescript: { tsconfig: { compilerOptions: { skipLibCheck: true, types: [...(fw.typescript?.tsconfig?.compilerOptions?.types ?? []), `./${HERE}/sdk-host`] } } },
  };
  mkdirSync(o.outDir, { recursive: true });
  // mcconfig resolves "./" paths against the manifest's folder: the manifest lives at the root, named for the program.
  const manifestPath = join(ROOT, `.${o.name}.manifest.json`);
  const stored = join(o.outDir, 'manifest.json');
  writeFileSync(stored, `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  try {
    const r = await mcconfig(['-m', '-p', 'x-cli-lin', '-o', o.outDir, manifestPath], o.log);
    const binary = join(o.outDir, 'bin', 'lin', 'release', o.name);
    if (r.code !== 0 || !existsSync(binary)) throw new SdkError(`mcconfig -p x-cli-lin failed for ${o.entry} (exit ${r.code}):\n${tail(r.stdout + r.stderr)}`);
    return { binary, manifest: stored, creation, ms: r.ms };
  } finally {
    rmQuiet(manifestPath);
  }
}

export interface HostBuild {
  readonly so: string;
  /** The folder of the compiled modules (.xsb), under outDir/tmp. */
  readonly modules: string;
  readonly ms: number;
  readonly output: string;
}

/** `mcconfig -m -p lin` on manifest.json: compiles every module of the gate (tsc, xsc, xsl, cc) and links mc.so. */
export async function buildHost(outDir: string, log?: (chunk: string) => void): Promise<HostBuild> {
  mkdirSync(outDir, { recursive: true });
  const r = await mcconfig(['-m', '-p', 'lin', '-o', outDir, join(ROOT, 'manifest.json')], log);
  // mcconfig names the app after the manifest's folder (the clone's directory name).
  const name = basename(ROOT.replace(/[\\/]+$/, ''));
  const so = join(outDir, 'bin', 'lin', 'mc', 'release', name, 'mc.so');
  if (r.code !== 0 || !existsSync(so)) throw new SdkError(`mcconfig -m -p lin manifest.json failed (exit ${r.code}; expected ${so}):\n${tail(r.stdout + r.stderr)}`);
  return { so, modules: join(outDir, 'tmp', 'lin', 'mc', 'release', name, 'modules'), ms: r.ms, output: r.stdout + r.stderr };
}

function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function rmQuiet(path: string): void {
  rmSync(path, { force: true });
}
