// Bounded polling for states that raise no event (a score in /proc, a file the daemon writes):
// fails with what it waited for, never hangs a test.

/** Polls `probe` every `intervalMs` until it returns something other than null or undefined; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | null | undefined | Promise<T | null | undefined>, intervalMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${String(timeoutMs)} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
