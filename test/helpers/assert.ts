import * as assert from 'uvu/assert';

/** Asserts that fn throws an error of this class (and, if given, with a matching message). */
export function throwsKind(fn: () => unknown, kind: new (...a: never[]) => Error, message?: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${String(e)}`);
    if (message) assert.match(e.message, message);
    return;
  }
  assert.unreachable(`expected ${kind.name}`);
}
