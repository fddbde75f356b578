// Host functions of the x-cli-lin programs (program.c). Types: sdk-host.d.ts.
export function write(text) @ "xs_sdk_write";
export function micros() @ "xs_sdk_micros";
export function readFile(path) @ "xs_sdk_read_file";
export function argument(index) @ "xs_sdk_argument";
export function loop() @ "xs_sdk_loop";
export function exit(code) @ "xs_sdk_exit";
export function memory() @ "xs_sdk_memory";
export function gc() @ "xs_sdk_gc";
