// What the control socket's requests do (docs/DAEMON.md#control-socket): status, verify, heal, deploy by
// path or by bytes, a service event recorded in the audit log, and an operator's target reset.
import { SentinelError, messageOf } from '../core/errors.js';
import type { Logger } from '../adapters/logger.js';
import type { AuditRecorder } from './audit-recorder.js';
import type { DaemonConfig } from './config.js';
import type { ControlCommand } from './control-protocol.js';
import { countReject, type DaemonCounters } from './counters.js';
import type { Sentinel } from './sentinel.js';
import { serviceEventAuditFields } from './service-event.js';

/** What the request handler acts on. */
export interface RequestDeps {
  sentinel: Sentinel;
  recorder: AuditRecorder;
  log: Logger;
  config(): DaemonConfig;
  status(): Promise<unknown>;
  /** `target-reset`: a fresh restart budget for a target, recovered if failed or down. */
  resetTarget(name: string): unknown;
  /** `trace`: each traced target's syscall histogram, slow syscalls and stall time (one target, or all). */
  trace?(name?: string): unknown;
  /** Re-reads the configuration; rejects with the reason when the new one is refused. */
  reload(): Promise<unknown>;
}

// Why: the control server parses and bounds requests; this decides what each one does, so the
// composition root only wires it.
export function controlRequestHandler(deps: RequestDeps): (request: ControlCommand) => Promise<unknown> {
  const { sentinel, recorder, log } = deps;
  return async (request) => {
    switch (request.op) {
      case 'status':
        return deps.status();
      case 'reload':
        return deps.reload();
      case 'verify': {
        const report = await sentinel.verify('control socket');
        // The answer does not wait for the check; a check that cannot run (the daemon stopping) is said, not thrown.
        if (!report.ok) {
          sentinel.checkTamper('control socket verify found problems').catch((e: unknown) => {
            log.warn({ event: 'tamper-check-refused', reason: 'control socket verify found problems', err: messageOf(e) }, 'the tamper check after a verify request did not run');
          });
        }
        return report;
      }
      case 'heal':
        return sentinel.heal('control socket');
      case 'service-event': {
        const config = deps.config();
        const { op: _op, id: _id, ...event } = request;
        const target = config.targets.find((t) => t.unit === event.unit)?.name ?? null;
        log.warn({ event: 'service-event', unit: event.unit, result: event.result, target, evidenceLines: event.evidence.length }, event.message);
        recorder.record('recovery', serviceEventAuditFields(event, target));
        await recorder.flush();
        if (recorder.failing) throw new SentinelError('io', 'the audit log cannot be written now; the event is held and written once it can', { where: config.audit.path });
        return { recorded: true, target, evidenceLines: event.evidence.length };
      }
      case 'target-reset': {
        const result = deps.resetTarget(request.name);
        await recorder.flush();
        return result;
      }
      case 'trace':
        if (deps.trace === undefined) throw new SentinelError('unavailable', 'no eBPF engine: this daemon traces no syscalls', { where: 'trace' });
        return deps.trace(request.target);
      case 'deploy':
        // An inline bundle was streamed into a file by the control server, which removes it after the reply.
        return sentinel.deploy('bundlePath' in request ? request.bundlePath : request.upload.path, 'socket');
    }
  };
}

// Why: a deploy refused before it reached the guardian (its upload did not fit on the disk, a malformed line) is
// still a reject: counted and audited like the others.
export function refusalRecorder(counters: DaemonCounters, recorder: AuditRecorder): (refusal: { deploy: boolean; error: SentinelError }) => void {
  return ({ deploy, error }) => {
    if (!deploy) return;
    countReject(counters, error.code);
    recorder.record('reject', { source: 'socket', code: error.code, detail: error.message, where: error.where });
  };
}
