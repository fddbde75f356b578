// Bundles device code into one classic script for the XS worker. XS runs it
// with eval, so the output is an IIFE; platform "neutral" keeps Node's module
// resolution conditions (and Node built-ins) out.

import { build } from 'esbuild';

/** The esbuild options every XS bundle uses (one classic script, no Node resolution). */
export const XS_BUILD_OPTIONS = {
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  conditions: ['import', 'default'],
  logLevel: 'silent',
  legalComments: 'none',
} as const;

const cache = new Map<string, string>();

export async function bundleForXs(entry: string): Promise<string> {
  const hit = cache.get(entry);
  if (hit !== undefined) return hit;
  const result = await build({ ...XS_BUILD_OPTIONS, mainFields: [...XS_BUILD_OPTIONS.mainFields], conditions: [...XS_BUILD_OPTIONS.conditions], entryPoints: [entry] });
  const out = result.outputFiles[0];
  if (out === undefined) throw new Error(`esbuild produced nothing for ${entry}`);
  cache.set(entry, out.text);
  return out.text;
}
