// Guest shim for `mc/config`: the manifest's `config` with the gate's
// overrides, filled in by the init command before main() runs.

import { config } from './runtime.js';

export default config;
