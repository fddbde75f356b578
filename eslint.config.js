// Lint: typescript-eslint's recommended type-aware rules, plus the device
// rule: code under firmware/ and protocol/ runs on XS, so it may not import
// Node built-ins or use Node globals (Buffer, process, require).

import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'crypto', 'buffer', 'child_process', 'net', 'stream', 'events', 'util', 'url', 'module', 'worker_threads', 'timers', 'process'];

export default tseslint.config(
  // sdk-host.js declares XS host functions (`function f() @ "xs_f";`), Moddable syntax, not JavaScript.
  { ignores: ['node_modules/**', 'dist/**', '.tmp/**', 'build/**', 'bench/results/**', 'host-sim/moddable-sdk/sdk-host.js', 'host-sim/moddable-sdk/no-resource.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
      globals: { console: 'readonly', process: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', URL: 'readonly', structuredClone: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      eqeqeq: ['error', 'always'],
      'no-control-regex': 'off',
    },
  },
  {
    files: ['firmware/**/*.ts', 'protocol/**/*.ts', 'test/sdk/device-cases.ts', 'test/sdk/program/*.ts', 'bench/sdk/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: nodeBuiltins.map((p) => ({ group: [p], message: 'device code runs on XS: no Node built-ins' })) }],
      'no-restricted-globals': ['error', { name: 'Buffer', message: 'no Buffer on XS: use Uint8Array' }, { name: 'process', message: 'no process on XS' }, { name: 'require', message: 'ES modules only' }],
    },
  },
  {
    files: ['**/*.mjs', '*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  // The console page's script runs in the browser (a classic script, no build step).
  {
    files: ['host-sim/console/assets/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'script',
      parserOptions: { projectService: false, program: null },
      globals: { window: 'readonly', document: 'readonly', location: 'readonly', fetch: 'readonly', EventSource: 'readonly', FormData: 'readonly', URLSearchParams: 'readonly', performance: 'readonly', requestAnimationFrame: 'readonly', console: 'readonly' },
    },
  },
);
