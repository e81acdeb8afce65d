// Kernel-feature gates for tests. Outside CI a test whose feature is missing is skipped with the
// reason printed; with SENTINEL_REQUIRE_KERNEL=1 (set by .ci/run) the same test fails instead.
import type { TestContext } from 'node:test';

export const requireKernel = process.env.SENTINEL_REQUIRE_KERNEL === '1';

/**
 * Call at the top of a test: `if (needs(t, isRoot(), 'root')) return;`
 * Returns true when the test must stop (skipped); throws in CI so the run fails.
 */
export function needs(t: TestContext, ok: boolean, what: string): boolean {
  if (ok) return false;
  if (requireKernel) throw new Error(`required for CI but missing on this host: ${what}`);
  t.skip(`skipped: ${what} not available here`);
  return true;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
