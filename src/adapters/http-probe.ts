// HTTP health probe: a GET with a hard deadline, so a backend that accepts but never
// answers (deadlock, stuck GIL) counts as a failure instead of hanging the sentinel.
import { request } from 'node:http';
import { messageOf } from '../core/errors.js';

export type ProbeResult = { ok: true; status: number; ms: number } | { ok: false; status?: number; error: string; ms: number };

// Why: one fresh connection per probe (no keep-alive pool), so a hung socket is never reused.
export function httpProbe(url: string, timeoutMs: number): Promise<ProbeResult> {
  const t0 = performance.now();
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    const finish = (r: ProbeResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    let req: ReturnType<typeof request>;
    try {
      req = request(url, { method: 'GET', agent: false, headers: { connection: 'close' } }, (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const ms = performance.now() - t0;
          finish(status >= 200 && status < 400 ? { ok: true, status, ms } : { ok: false, status, error: `HTTP ${status}`, ms });
        });
        res.on('error', (e) => finish({ ok: false, error: e.message, ms: performance.now() - t0 }));
      });
    } catch (e) {
      resolve({ ok: false, error: messageOf(e), ms: 0 });
      return;
    }
    const timer = setTimeout(() => {
      finish({ ok: false, error: `no answer within ${timeoutMs} ms`, ms: performance.now() - t0 });
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => finish({ ok: false, error: e.message, ms: performance.now() - t0 }));
    req.end();
  });
}
