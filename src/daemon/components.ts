// The daemon as parts with one start/stop shape: the composition root starts them in order, and one
// stack stops them in reverse order, at shutdown and after a failed start alike (docs/DAEMON.md).
import { SentinelError, messageOf } from '../core/errors.js';
import type { Logger } from '../adapters/logger.js';
import type { DaemonConfig } from './config.js';
import type { AuditRecorder } from './audit-recorder.js';
import { join } from 'node:path';
import { TargetSupervisor, type TargetAuditEvent } from './targets/index.js';
import { CHILD_RECORDS_FILE, ChildRecords } from './targets/child-records.js';
import { ProtectionManager } from './protection/index.js';
import type { EbpfHost } from './ebpf-host.js';

/** Why a part is stopped: the daemon's stop reason, and whether the daemon had finished starting. */
export interface StopContext {
  reason: string;
  /** False when start failed part-way: a stop line is not audited then. */
  started: boolean;
}

// Why: every part of the running daemon (audit log, vault guardian, control socket, watches, duties)
// starts and stops the same way, so teardown is written once.
export interface DaemonPart {
  readonly name: string;
  start(): Promise<void>;
  stop(how: StopContext): Promise<void>;
}

// Why: the daemon's duties besides the vault also report: STATUS=, `status`, watchdog health.
export interface DaemonComponent extends DaemonPart {
  status(): unknown;
  statusLine(): string;
  /** A reason when the component itself has failed (withholds watchdog pings), else null. */
  failed?(): string | null;
  /** The targets component only: `target-reset` of the control socket. */
  resetTarget?(name: string): unknown;
  /** The targets component only: `trace` of the control socket. */
  trace?(name?: string): unknown;
}

// Why: the one teardown. A part is registered before it starts, so one that failed half-way is stopped
// too; every part is stopped even when an earlier stop failed (that failure is logged).
export class PartStack {
  private readonly parts: DaemonPart[] = [];

  constructor(private readonly log: Logger) {}

  async start(part: DaemonPart): Promise<void> {
    this.parts.push(part);
    await part.start();
  }

  async stopAll(how: StopContext): Promise<void> {
    for (const part of this.parts.splice(0).reverse()) {
      try {
        await part.stop(how);
      } catch (e) {
        this.log.warn({ event: 'component-stop-failed', component: part.name, err: messageOf(e) }, 'component stop failed');
      }
    }
  }
}

// Why: a part that only needs to be closed at the end (it was opened before the stack could hold it).
export function closing(name: string, close: () => Promise<void>): DaemonPart {
  return { name, start: () => Promise.resolve(), stop: () => close() };
}

// Why: the daemon's one eBPF engine as a part: opened before the parts that use it, closed after them,
// and its mode (or why it polls instead) in STATUS= and `status`.
export function ebpfComponent(host: EbpfHost): DaemonComponent {
  return { name: 'ebpf', start: () => host.start(), stop: () => host.close(), status: () => host.status(), statusLine: () => host.statusLine() };
}

// Why: wires TargetSupervisor and ProtectionManager; with no targets there is nothing to recover or protect.
export function buildComponents(config: DaemonConfig, deps: { log: Logger; audit: AuditRecorder; ebpf: EbpfHost | null; onTargetEvent?: (e: TargetAuditEvent) => void }): Promise<DaemonComponent[]> {
  if (config.targets.length === 0) return Promise.resolve([]);
  const targets = new TargetSupervisor(config.targets, {
    log: deps.log.child({ component: 'targets' }),
    ...(deps.ebpf !== null ? { ebpf: deps.ebpf } : {}),
    audit: (e) => {
      deps.audit.record('recovery', { ...e });
      deps.onTargetEvent?.(e);
    },
    pollIntervalMs: config.limits.exitPollIntervalMs,
    retransmitCheckIntervalMs: config.limits.retransmitCheckIntervalMs,
    childRecords: new ChildRecords(join(config.stateDir, CHILD_RECORDS_FILE)),
  });
  const protection = new ProtectionManager(config.protection, {
    pids: () => targets.status().flatMap((s) => (s.pid === null ? [] : [s.pid])),
    log: deps.log.child({ component: 'protection' }),
    audit: (e) => {
      const { kind: _kind, at: _at, ...fields } = e;
      deps.audit.record('protection', fields);
    },
  });
  return Promise.resolve([
    { name: 'targets', start: () => targets.start(), stop: () => targets.stop(), status: () => targets.status(), statusLine: () => targets.statusLine(), resetTarget: (name) => targets.reset(name), trace: (name) => targets.trace(name) },
    { name: 'protection', start: () => protection.start(), stop: () => protection.stop(), status: () => protection.status(), statusLine: () => protection.statusLine() },
  ]);
}

// Why: the control socket's `target-reset` reaches the supervisor through its component; a daemon
// without targets says so instead of guessing.
export function resetTarget(components: readonly DaemonComponent[], name: string): unknown {
  const part = components.find((c) => c.resetTarget !== undefined);
  if (part?.resetTarget === undefined) throw new SentinelError('not-found', `no target named "${name}" (this daemon has no targets)`, { where: 'target' });
  return part.resetTarget(name);
}

// Why: the control socket's `trace` reaches the supervisor's syscall view the same way.
export function traceTargets(components: readonly DaemonComponent[], name?: string): unknown {
  const part = components.find((c) => c.trace !== undefined);
  if (part?.trace === undefined) {
    if (name === undefined) return [];
    throw new SentinelError('not-found', `no target named "${name}" (this daemon has no targets)`, { where: 'target' });
  }
  return part.trace(name);
}
