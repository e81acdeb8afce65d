// The protection component: sets up the slice in the mode this host needs (systemd or cgroupfs), then
// on every pass places and scores the protected processes and reports what holds (docs/PROTECTION.md).
import { isSentinelError, messageOf } from '../../core/errors.js';
import { cgroupPathIn, readCgroupProcs, v2PathOf } from '../../adapters/cgroup.js';
import { detectCgroupLayout, isSystemdInit, type CgroupLayout } from '../../adapters/cgroup-layout.js';
import { processTable, type ProcessEntry } from '../../adapters/proc.js';
import { CgroupfsSlice } from './cgroupfs-slice.js';
import { MemoryFloor } from './memory.js';
import { protectedPids, repairLine, statusLine } from './policy.js';
import { OomScores } from './scores.js';
import type { ProtectionSpec } from './spec.js';
import { SystemdSlice } from './systemd-slice.js';
import type { ExpendableProcess, ProtectedProcess, ProtectionAudit, ProtectionDeps, ProtectionItems, ProtectionRepair, ProtectionReport, ProtectionStatus, SliceMode } from './types.js';

// Keeps the protected services in the slice with their memory floor and OOM scores (docs/PROTECTION.md).
export class ProtectionManager {
  /** Component name for the daemon's composition root (DaemonComponent). */
  readonly name = 'protection';
  private readonly items: ProtectionItems;
  private readonly scores: OomScores;
  private readonly audit: ProtectionAudit;
  private layout: CgroupLayout | null = null;
  private mode: SliceMode | null = null;
  private systemd = false;
  private memory: MemoryFloor | null = null;
  private effectiveScore: number | null = null;
  private readonly placed = new Set<number>();
  private processes: ProtectedProcess[] = [];
  private expendables: ExpendableProcess[] = [];
  private lastCheck: Date | null = null;
  private lastFullMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ProtectionReport> | null = null;
  private stopped = true;

  constructor(
    private readonly spec: ProtectionSpec,
    private readonly deps: ProtectionDeps,
  ) {
    this.items = {
      slice: { state: 'pending' },
      memoryLow: spec.memoryLow === undefined ? { state: 'off' } : { state: 'pending' },
      memoryMin: spec.memoryMin === undefined ? { state: 'off' } : { state: 'pending' },
      oom: { state: 'pending' },
      expendable: spec.expendable.length === 0 ? { state: 'off' } : { state: 'pending' },
    };
    this.audit = (action, what, detail, pid) => deps.audit?.({ kind: 'protection', action, what, detail, at: this.now().toISOString(), ...(pid === undefined ? {} : { pid }) });
    this.scores = new OomScores(spec, deps.log, this.audit);
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  // Apply everything once, verify it, then keep re-checking (scan every scanIntervalMs, full every checkIntervalMs).
  async start(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.stopped = false;
    await this.setup();
    const report = await this.check();
    this.deps.log.info({ status: report.status.items, processes: report.status.processes.length }, this.statusLine());
    this.schedule();
  }

  // Stop re-checking once a pass in flight has finished; protection stays, only an empty slice we created goes.
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.running !== null) await this.running.catch(() => undefined);
    await this.mode?.release();
  }

  // Why: the full re-check is due by the injected clock, like every other time the manager reads.
  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const full = this.now().getTime() - this.lastFullMs >= this.spec.checkIntervalMs;
      this.run(full)
        .catch((e: unknown) => this.deps.log.error({ err: messageOf(e) }, 'protection: periodic check failed'))
        .finally(() => this.schedule());
    }, this.spec.scanIntervalMs);
    this.timer.unref();
  }

  // Re-check everything and repair drift; safe to call on eBPF fork/exec events (calls are serialised).
  async check(): Promise<ProtectionReport> {
    return this.run(true);
  }

  private async run(full: boolean): Promise<ProtectionReport> {
    while (this.running !== null) await this.running.catch(() => undefined);
    const p = this.pass(full);
    this.running = p;
    try {
      return await p;
    } finally {
      this.running = null;
    }
  }

  // Why: systemd owns the slice when it is PID 1 and no cgroupRoot is set; otherwise the sentinel does.
  private async setup(): Promise<void> {
    const layout = await detectCgroupLayout();
    this.layout = layout;
    const systemd = this.spec.cgroupRoot === undefined && (await isSystemdInit());
    this.systemd = systemd;
    if (layout.v2 === null) {
      this.mode = null;
      this.items.slice = { state: 'unsupported', short: 'no cgroup v2', reason: layout.kernelHasCgroup2 ? 'cgroup2 is not mounted on this host' : 'this kernel has no cgroup2', code: 'unavailable' };
    } else {
      this.mode = systemd ? new SystemdSlice(this.spec.slice, layout.v2.mount) : new CgroupfsSlice(this.spec.slice, this.spec.cgroupRoot ?? layout.v2.mount, layout.v2.mount, this.audit);
      this.items.slice = await this.mode.setup();
    }
    this.memory = new MemoryFloor(this.spec, layout, this.mode, this.audit);
    await this.memory.apply(this.items);
  }

  private async pass(full: boolean): Promise<ProtectionReport> {
    const repairs: ProtectionRepair[] = [];
    const problems: string[] = [];
    if (this.layout === null) await this.setup();
    const mode = this.mode;
    if (full) {
      this.lastFullMs = this.now().getTime();
      try {
        if (mode !== null && (await mode.restore())) repairs.push({ what: 'cgroup', from: 'missing', to: mode.sliceDir ?? '', kind: 'drift' });
      } catch (e) {
        problems.push(messageOf(e));
      }
      if (this.memory !== null) repairs.push(...(await this.memory.recheck(this.items, problems)));
    }
    const table = await processTable({ cmdline: full && this.spec.expendable.length > 0 });
    const sliceDir = mode?.sliceDir ?? null;
    const sliceMembers = sliceDir === null ? [] : await readCgroupProcs(sliceDir).catch(() => []);
    const pids = protectedPids(this.deps.pids(), table, sliceMembers);
    repairs.push(...(await this.place(pids, table, problems)));
    const scored = await this.scores.protect(pids, table, this.processes, problems);
    repairs.push(...scored.repairs);
    this.items.oom = scored.item;
    this.effectiveScore = scored.effective;
    if (full) {
      const exp = await this.scores.expendables(new Set(pids), table, problems);
      repairs.push(...exp.repairs);
      this.items.expendable = exp.item;
      this.expendables = exp.found;
    }
    this.lastCheck = this.now();
    for (const r of repairs) {
      if (r.kind === 'drift') this.deps.log.warn({ repair: r }, repairLine(r));
      else this.deps.log.info({ repair: r }, repairLine(r));
      this.audit(r.kind === 'drift' ? 'repair' : 'apply', r.what, `${r.from} -> ${r.to}`, r.pid);
    }
    return { at: this.lastCheck.toISOString(), repairs, problems, status: this.status() };
  }

  // Why: keep every protected process in the slice; where the sentinel may not move them (systemd), say so.
  private async place(pids: number[], table: ReadonlyMap<number, ProcessEntry>, problems: string[]): Promise<ProtectionRepair[]> {
    const repairs: ProtectionRepair[] = [];
    const mode = this.mode;
    const v2 = this.layout?.v2 ?? null;
    const sliceDir = mode?.sliceDir ?? null;
    const sliceRel = v2 !== null && sliceDir !== null ? cgroupPathIn(v2.mount, sliceDir) : null;
    const next: ProtectedProcess[] = [];
    const outside: string[] = [];
    for (const pid of pids) {
      let cgroup: string | null = null;
      try {
        cgroup = await v2PathOf(pid);
      } catch {
        continue; // exited meanwhile
      }
      let inSlice: boolean | null = sliceRel === null || cgroup === null ? null : cgroup === sliceRel || cgroup.startsWith(`${sliceRel}/`);
      if (inSlice === false && mode !== null && mode.mayMove && sliceRel !== null) {
        try {
          await mode.move(pid);
          repairs.push({ pid, what: 'cgroup', from: cgroup ?? '?', to: sliceRel, kind: this.placed.has(pid) ? 'drift' : 'initial' });
          cgroup = sliceRel;
          inSlice = true;
        } catch (e) {
          if (!isSentinelError(e, 'not-found')) problems.push(messageOf(e));
        }
      }
      if (inSlice === true) this.placed.add(pid);
      if (inSlice === false) outside.push(`${pid} in ${cgroup ?? '?'}`);
      next.push({ pid, comm: table.get(pid)?.comm ?? '?', oomScoreAdj: null, cgroup, inSlice });
    }
    for (const pid of this.placed) if (!table.has(pid)) this.placed.delete(pid);
    this.processes = next;
    if (mode !== null && sliceDir !== null && outside.length > 0) {
      const { reason, short } = mode.outside(outside);
      problems.push(reason);
      this.items.slice = { state: 'refused', short, reason, code: 'not-permitted' };
    } else if (this.items.slice.state === 'refused' && outside.length === 0 && sliceDir !== null) {
      this.items.slice = { state: 'applied', reason: `all protected processes in ${sliceDir}` };
    }
    return repairs;
  }

  // Per item: applied / refused with reason / unsupported with reason (for status --json and doctor).
  status(): ProtectionStatus {
    return {
      hierarchy: this.layout?.kind ?? 'unknown',
      systemd: this.systemd,
      slice: this.spec.slice,
      sliceDir: this.mode?.sliceDir ?? null,
      items: { ...this.items },
      effectiveOomScoreAdj: this.effectiveScore,
      processes: this.processes.map((p) => ({ ...p })),
      expendables: this.expendables.map((e) => ({ ...e })),
      lastCheck: this.lastCheck?.toISOString() ?? null,
    };
  }

  // One line for systemd's STATUS=: what holds and what does not, and why.
  statusLine(): string {
    return statusLine(this.items, this.spec.oomScoreAdj);
  }
}
