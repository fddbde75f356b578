// Guest shim for Moddable's `modules` module: the simulated build holds the
// modules the bundle holds and nothing else; in particular no TLS socket
// ('embedded:io/socket/tcp/tls'), like the default device build.

const available = new Set<string>(['embedded:io/socket/tcp', 'embedded:network/mqtt/client']);

export default class Modules {
  static has(name: string): boolean {
    return available.has(name);
  }
  static importNow(name: string): unknown {
    throw new Error(`module "${name}" not found (not in this build)`);
  }
  static get host(): string[] {
    return [...available];
  }
  static get archive(): string[] {
    return [];
  }
}
