// node:test reporter: the time each test file took (its top-level tests run one after another, so
// their durations add up to the file's run time, less module loading), slowest first, so the
// suite's slow parts are visible in every run; then each failure in context (test-failure-context.mjs).
import { relative } from 'node:path';
import { FailureContext } from './test-failure-context.mjs';

/**
 * @param {AsyncIterable<{ type: string, data: { file?: string, nesting?: number, details?: { duration_ms?: number } } }>} source
 */
export default async function* fileTimes(source) {
  /** @type {Map<string, { ms: number, tests: number, failed: number }>} */
  const files = new Map();
  const context = new FailureContext();
  yield context.header();
  for await (const event of source) {
    context.see(event);
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { file, nesting, details } = event.data;
    if (typeof file !== 'string' || nesting !== 0) continue;
    const entry = files.get(file) ?? { ms: 0, tests: 0, failed: 0 };
    entry.ms += details?.duration_ms ?? 0;
    entry.tests += 1;
    if (event.type === 'test:fail') entry.failed += 1;
    files.set(file, entry);
  }
  const rows = [...files.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((sum, [, t]) => sum + t.ms, 0);
  yield `\ntime per test file, slowest first (${(total / 1000).toFixed(1)} s in all, run ${process.env.SENTINEL_TEST_CONCURRENCY ?? '2'} at a time):\n`;
  for (const [file, t] of rows) {
    const seconds = (t.ms / 1000).toFixed(1).padStart(7);
    yield `${seconds} s  ${relative(process.cwd(), file)}  (${t.tests} tests${t.failed > 0 ? `, ${t.failed} failed` : ''})\n`;
  }
  yield context.summary();
}
