// Shared pieces of the property-based tests (test/core/properties*.test.ts).
import { isSentinelError } from '../../src/core/index.js';

/** Run counts sized for CI; CORE_PROPERTY_SCALE=20 (say) searches harder locally. */
export function runs(n: number): number {
  return Math.ceil(n * Number(process.env.CORE_PROPERTY_SCALE ?? 1));
}

/** Runs fn; passes if it returns or throws a SentinelError, fails on any other exception. */
export function onlySentinelErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (isSentinelError(e)) return false;
    throw e;
  }
}
