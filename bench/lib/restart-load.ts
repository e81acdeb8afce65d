// The load of the restart benchmark (bench/backend-restart.ts), a process of its own inside the
// container: an open-loop client sending GET /health at a fixed rate, each request on a new
// connection (as many independent clients would), whatever the earlier requests are doing. So a
// restart shows up as failed or delayed requests instead of a client that merely waits.
// Every request is recorded with its start and end on CLOCK_MONOTONIC (µs, the clock of systemd's
// *TimestampMonotonic), its outcome and the PID that answered; written as JSON on SIGTERM, after
// the outstanding requests have ended or timed out.
// A request whose connection was reset before any byte of the response is retried once on a new
// connection, as RFC 9110 §9.2.2 allows for an idempotent method (and as HTTP clients with automatic
// retries do): the record keeps the first attempt's outcome (the raw count) and adds the retry's, so
// the figures can show both what the server lost and what such a client sees.
// Usage: node dist/bench/lib/restart-load.js --out FILE [--rate 250] [--port 8000] [--timeout-ms 10000]
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { stringArg } from './args.js';

/**
 * One request: [startUs, endUs, outcome, pid, retry]; outcome is 'ok', 'http-NNN', 'refused', 'reset',
 * 'timeout' or an error code; retry is the outcome of the one retry of a request reset before any
 * response byte ('' when there was none; its end is not recorded: it is what a retrying client sees).
 */
export type LoadRecord = [number, number, string, number, string?];

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

function classify(e: NodeJS.ErrnoException): string {
  if (e.code === 'ECONNREFUSED') return 'refused';
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.message === 'socket hang up') return 'reset';
  return e.code ?? 'error';
}

/** One GET: its outcome, the answering PID, and whether any byte of a response arrived. */
function attempt(port: number, timeoutMs: number): Promise<{ outcome: string; pid: number; responded: boolean }> {
  return new Promise((resolve) => {
    let done = false;
    let responded = false;
    const finish = (outcome: string, pid = 0): void => {
      if (done) return;
      done = true;
      resolve({ outcome, pid, responded });
    };
    const req = request({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: timeoutMs }, (res) => {
      responded = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let pid = 0;
        try {
          pid = Number((JSON.parse(body) as { pid?: number }).pid ?? 0);
        } catch {
          pid = 0;
        }
        finish(status === 200 && pid > 0 ? 'ok' : `http-${String(status)}`, pid);
      });
      res.on('error', (e) => finish(classify(e)));
    });
    req.on('timeout', () => {
      finish('timeout');
      req.destroy();
    });
    req.on('error', (e) => finish(classify(e)));
    req.end();
  });
}

async function once(port: number, timeoutMs: number, records: LoadRecord[]): Promise<void> {
  const start = nowUs();
  const first = await attempt(port, timeoutMs);
  const end = nowUs();
  // RFC 9110 §9.2.2: a GET whose connection closed before any response byte may be sent again, once.
  const retry = first.outcome === 'reset' && !first.responded ? (await attempt(port, timeoutMs)).outcome : '';
  records.push([start, end, first.outcome, first.pid, retry]);
}

async function main(): Promise<void> {
  const out = stringArg('out', '');
  if (out === '') {
    console.error('restart-load: --out FILE is required');
    process.exit(2);
  }
  const rate = Number(stringArg('rate', '250'));
  const port = Number(stringArg('port', '8000'));
  const timeoutMs = Number(stringArg('timeout-ms', '10000'));
  const records: LoadRecord[] = [];
  const pending = new Set<Promise<void>>();
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  const periodMs = 1000 / rate;
  const t0 = performance.now();
  // Open loop: request k is due at t0 + k·period; a late timer sends every request that is due.
  for (let k = 0; !stopping; ) {
    while (!stopping && t0 + k * periodMs <= performance.now()) {
      const p = once(port, timeoutMs, records);
      pending.add(p);
      void p.then(() => pending.delete(p));
      k++;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + k * periodMs - performance.now())));
  }
  await Promise.all([...pending]);
  records.sort((a, b) => a[0] - b[0]);
  writeFileSync(out, JSON.stringify({ rate, port, timeoutMs, records }));
  process.exit(0);
}

await main();
