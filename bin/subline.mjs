#!/usr/bin/env node
// `subline` entry: runs the TypeScript CLI through tsx (no build step needed).
import { register } from 'tsx/esm/api';

register();
await import('../host-sim/cli/subline.ts');
