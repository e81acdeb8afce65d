// Memory and OOM protection of the OmniMind services: slice, memory.low/min, oom_score_adj,
// applied, read back, re-checked for drift, and reported truthfully where the host refuses.
import { join } from 'node:path';
import {
  availableControllers,
  cgroupPathIn,
  detectCgroupLayout,
  enableSubtreeController,
  ensureCgroup,
  isSystemdInit,
  moveProcess,
  readCgroupFile,
  readCgroupProcs,
  removeCgroup,
  systemdSliceCgroupPath,
  unprotectedAncestors,
  v2PathOf,
  writeMemoryProtection,
  type CgroupLayout,
} from '../../adapters/cgroup.js';
import { CAP_SYS_RESOURCE, hasCapability, readOomScoreAdj, writeOomScoreAdj } from '../../adapters/oom.js';
import { descendantsOf, processTable, type ProcessEntry } from '../../adapters/proc.js';
import { setUnitProperties, startUnit } from '../../adapters/systemctl.js';
import { isSentinelError, messageOf, type ErrorCode } from '../../core/errors.js';
import type { ExpendableSpec, ProtectionSpec } from './spec.js';

// The config seam, re-exported so the daemon imports protection from one place.
export { protectionSchema, parseMemorySize } from './spec.js';
export type { ProtectionSpec, ProtectionSpecInput } from './spec.js';

/** applied: in force and verified; refused: the host said no; unsupported: the host cannot; ineffective: set but capped above; off: not configured. */
export type ItemState = 'applied' | 'refused' | 'unsupported' | 'ineffective' | 'off' | 'pending';

// One protection and whether it holds, with the reason when it does not (no silent success).
export interface ProtectionItem {
  state: ItemState;
  /** Short reason for the STATUS= line, e.g. "no CAP_SYS_RESOURCE". */
  short?: string;
  /** The full reason, for status --json, doctor and the log. */
  reason?: string;
  code?: ErrorCode;
}

// A process the manager protects, as last seen.
export interface ProtectedProcess {
  pid: number;
  comm: string;
  oomScoreAdj: number | null;
  /** cgroup2 path as /proc/PID/cgroup shows it, null without cgroup2. */
  cgroup: string | null;
  inSlice: boolean | null;
}

// What `status --json` and `doctor` show about protection.
export interface ProtectionStatus {
  hierarchy: CgroupLayout['kind'] | 'unknown';
  systemd: boolean;
  slice: string;
  sliceDir: string | null;
  items: { slice: ProtectionItem; memoryLow: ProtectionItem; memoryMin: ProtectionItem; oom: ProtectionItem; expendable: ProtectionItem };
  /** The score actually in force on protected processes when the configured one was refused. */
  effectiveOomScoreAdj: number | null;
  processes: ProtectedProcess[];
  expendables: { pid: number; comm: string; oomScoreAdj: number }[];
  lastCheck: string | null;
}

/** One thing put back: a drifted score, a process moved out, a memory setting changed. */
export interface ProtectionRepair {
  pid?: number;
  what: 'oom_score_adj' | 'cgroup' | 'memory.low' | 'memory.min' | 'expendable';
  from: string;
  to: string;
  /** drift: we had applied it and someone changed it; initial: first placement of a new process. */
  kind: 'drift' | 'initial';
}

// The result of one check(): what was repaired and what could not be.
export interface ProtectionReport {
  at: string;
  repairs: ProtectionRepair[];
  problems: string[];
  status: ProtectionStatus;
}

/** pino-compatible logger subset. */
export interface ProtectionLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

// An audit-log entry for applied, refused and repaired protection.
export interface ProtectionAuditEvent {
  kind: 'protection';
  action: 'apply' | 'repair' | 'refused';
  what: string;
  pid?: number;
  detail: string;
  at: string;
}

// What the manager needs from the daemon: the targets' PIDs, a logger, the audit log, a clock.
export interface ProtectionDeps {
  /** Main PIDs of the protected targets, from the target supervisor. */
  pids(): number[];
  log: ProtectionLog;
  audit?(event: ProtectionAuditEvent): void;
  now?(): Date;
}

function codeOf(e: unknown): ErrorCode {
  return isSentinelError(e) ? e.code : 'io';
}

// Keeps the protected services in the slice with their memory floor and OOM scores (docs/PROTECTION.md).
export class ProtectionManager {
  /** Component name for the daemon's composition root (DaemonComponent). */
  readonly name = 'protection';
  private readonly spec: ProtectionSpec;
  private readonly deps: ProtectionDeps;
  private layout: CgroupLayout | null = null;
  private systemd = false;
  private sliceDir: string | null = null;
  /** Processes may be moved into the slice by us (false under systemd, or when the slice is refused). */
  private mayMove = false;
  private items: ProtectionStatus['items'];
  private effectiveScore: number | null = null;
  /** Scores we applied, per pid, to tell drift from a new process. */
  private readonly applied = new Map<number, number>();
  private readonly placed = new Set<number>();
  private readonly expendableApplied = new Map<number, number>();
  private processes: ProtectedProcess[] = [];
  private expendables: ProtectionStatus['expendables'] = [];
  private lastCheck: Date | null = null;
  private lastFull = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ProtectionReport> | null = null;
  private stopped = true;
  /** We made the slice cgroup ourselves (no systemd): remove it on stop if nothing is left in it. */
  private createdSlice = false;

  constructor(spec: ProtectionSpec, deps: ProtectionDeps) {
    this.spec = spec;
    this.deps = deps;
    const pending: ProtectionItem = { state: 'pending' };
    const off: ProtectionItem = { state: 'off' };
    this.items = {
      slice: pending,
      memoryLow: spec.memoryLow === undefined ? off : pending,
      memoryMin: spec.memoryMin === undefined ? off : pending,
      oom: pending,
      expendable: spec.expendable.length === 0 ? off : pending,
    };
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  private audit(action: ProtectionAuditEvent['action'], what: string, detail: string, pid?: number): void {
    this.deps.audit?.({ kind: 'protection', action, what, detail, at: this.now().toISOString(), ...(pid === undefined ? {} : { pid }) });
  }

  // Apply everything once, verify it, then keep re-checking (scan every scanIntervalMs, full every checkIntervalMs).
  async start(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.stopped = false;
    await this.setupSlice();
    await this.applyMemory();
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
    if (this.createdSlice && this.sliceDir !== null && (await readCgroupProcs(this.sliceDir).catch(() => [0])).length === 0) {
      await removeCgroup(this.sliceDir).catch(() => undefined);
      this.createdSlice = false;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const full = Date.now() - this.lastFull >= this.spec.checkIntervalMs;
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

  private async pass(full: boolean): Promise<ProtectionReport> {
    const repairs: ProtectionRepair[] = [];
    const problems: string[] = [];
    if (this.layout === null) {
      await this.setupSlice();
      await this.applyMemory();
    }
    if (full) {
      this.lastFull = Date.now();
      if (this.sliceDir !== null && this.mayMove) {
        try {
          // Someone removed our slice: make it again (memory settings are rewritten just below).
          if ((await ensureCgroup(this.sliceDir)).created) repairs.push({ what: 'cgroup', from: 'missing', to: this.sliceDir, kind: 'drift' });
        } catch (e) {
          problems.push(messageOf(e));
        }
      }
      repairs.push(...(await this.recheckMemory(problems)));
    }
    const table = await processTable({ cmdline: full && this.spec.expendable.length > 0 });
    const protectedPids = await this.protectedPids(table);
    repairs.push(...(await this.placeProcesses(protectedPids, table, problems)));
    repairs.push(...(await this.scoreProcesses(protectedPids, table, problems)));
    if (full) repairs.push(...(await this.scoreExpendables(new Set(protectedPids), table, problems)));
    this.lastCheck = this.now();
    for (const r of repairs) {
      const line = `protection: ${r.what}${r.pid === undefined ? '' : ` of process ${r.pid}`} ${r.kind === 'drift' ? 'drifted' : 'set'}: ${r.from} -> ${r.to}`;
      if (r.kind === 'drift') this.deps.log.warn({ repair: r }, line);
      else this.deps.log.info({ repair: r }, line);
      this.audit(r.kind === 'drift' ? 'repair' : 'apply', r.what, `${r.from} -> ${r.to}`, r.pid);
    }
    return { at: this.lastCheck.toISOString(), repairs, problems, status: this.status() };
  }

  // The targets' main PIDs, all their descendants, and whatever else sits in our own slice.
  private async protectedPids(table: Map<number, ProcessEntry>): Promise<number[]> {
    const roots = this.deps.pids().filter((p) => Number.isInteger(p) && p > 0);
    const set = new Set(descendantsOf(roots, table));
    if (this.sliceDir !== null) {
      for (const pid of await readCgroupProcs(this.sliceDir).catch(() => [])) if (table.has(pid)) set.add(pid);
    }
    return [...set].sort((a, b) => a - b);
  }

  private async setupSlice(): Promise<void> {
    this.layout = await detectCgroupLayout();
    this.systemd = this.spec.cgroupRoot === undefined && (await isSystemdInit());
    const v2 = this.layout.v2;
    if (v2 === null) {
      this.items.slice = {
        state: 'unsupported',
        short: 'no cgroup v2',
        reason: this.layout.kernelHasCgroup2 ? 'cgroup2 is not mounted on this host' : 'this kernel has no cgroup2',
        code: 'unavailable',
      };
      return;
    }
    if (this.systemd) {
      this.sliceDir = join(v2.mount, systemdSliceCgroupPath(this.spec.slice));
      try {
        const { created } = await ensureSliceUnderSystemd(this.spec.slice, this.sliceDir);
        this.items.slice = { state: 'applied', reason: `${this.spec.slice} ${created ? 'started' : 'adopted'} (systemd unit)` };
      } catch (e) {
        this.items.slice = { state: 'refused', short: 'systemctl failed', reason: messageOf(e), code: codeOf(e) };
        this.sliceDir = null;
      }
      this.mayMove = false;
      return;
    }
    const root = this.spec.cgroupRoot ?? v2.mount;
    if (root !== v2.mount && !root.startsWith(`${v2.mount}/`)) {
      this.items.slice = { state: 'refused', short: 'cgroupRoot not on cgroup v2', reason: `cgroupRoot ${root} is not under the cgroup2 mount ${v2.mount}`, code: 'config' };
      this.audit('refused', 'slice', this.items.slice.reason!);
      return;
    }
    this.sliceDir = join(root, this.spec.slice);
    try {
      const { created } = await ensureCgroup(this.sliceDir);
      this.items.slice = { state: 'applied', reason: `${this.sliceDir} ${created ? 'created' : 'adopted'}` };
      this.createdSlice = created || this.createdSlice;
      this.mayMove = true;
      if (created) this.audit('apply', 'slice', `created ${this.sliceDir}`);
    } catch (e) {
      const ro = /read-only/.test(messageOf(e));
      this.items.slice = { state: 'refused', short: ro ? 'read-only cgroupfs' : 'cannot create', reason: messageOf(e), code: codeOf(e) };
      this.sliceDir = null;
      this.mayMove = false;
      this.audit('refused', 'slice', messageOf(e));
    }
  }

  private async applyMemory(): Promise<void> {
    for (const file of ['memory.low', 'memory.min'] as const) {
      const key = file === 'memory.low' ? 'memoryLow' : 'memoryMin';
      this.items[key] = await this.applyMemoryFile(file, this.spec[key]);
    }
  }

  // Why memory.low/min cannot be set on this host, or null when the v2 memory controller is there.
  private async memoryUnsupported(): Promise<ProtectionItem | null> {
    const layout = this.layout;
    if (layout === null || layout.v2 === null || this.sliceDir === null) {
      return { state: 'unsupported', short: 'no slice', reason: 'the slice cgroup could not be set up', code: 'unavailable' };
    }
    const parent = join(this.sliceDir, '..');
    const controllers = await availableControllers(parent).catch(() => [] as string[]);
    if (controllers.includes('memory')) return null;
    const v1 = layout.v1.memory;
    return {
      state: 'unsupported',
      short: 'no v2 memory controller',
      reason:
        v1 !== undefined
          ? `the memory controller is bound to cgroup v1 (${v1}); cgroup v2 (${layout.v2.mount}) has none, and v1 has no memory.low/memory.min`
          : `cgroup v2 (${layout.v2.mount}) offers no memory controller to ${parent}`,
      code: 'unavailable',
    };
  }

  private async applyMemoryFile(file: 'memory.low' | 'memory.min', bytes: number | undefined): Promise<ProtectionItem> {
    if (bytes === undefined) return { state: 'off' };
    const unsupported = await this.memoryUnsupported();
    if (unsupported !== null) {
      this.audit('refused', file, unsupported.reason ?? '');
      return unsupported;
    }
    const sliceDir = this.sliceDir!;
    const v2 = this.layout!.v2!;
    try {
      if (this.systemd) {
        await setUnitProperties(this.spec.slice, { [file === 'memory.low' ? 'MemoryLow' : 'MemoryMin']: String(bytes) });
        const back = Number(await readCgroupFile(sliceDir, file));
        if (back < Math.floor(bytes / 4096) * 4096) throw new Error(`${file} reads ${back} after systemctl set-property`);
      } else {
        await this.enableMemoryDownTo(v2.mount, join(sliceDir, '..'));
        await writeMemoryProtection(sliceDir, file, bytes);
      }
    } catch (e) {
      const item: ProtectionItem = { state: 'refused', short: isSentinelError(e, 'not-permitted') ? 'not permitted' : 'write failed', reason: messageOf(e), code: codeOf(e) };
      this.audit('refused', file, item.reason!);
      return item;
    }
    this.audit('apply', file, `${bytes} bytes on ${sliceDir}`);
    return this.effectiveness(file, bytes);
  }

  // Each level from the v2 root down to the slice's parent must offer memory to its children.
  private async enableMemoryDownTo(mount: string, parent: string): Promise<void> {
    const rel = cgroupPathIn(mount, parent);
    let dir = mount;
    await enableSubtreeController(dir, 'memory');
    for (const part of rel.split('/').filter((p) => p !== '')) {
      dir = join(dir, part);
      await enableSubtreeController(dir, 'memory');
    }
  }

  // Protection is only as strong as the weakest ancestor, unless memory_recursiveprot is on.
  private async effectiveness(file: 'memory.low' | 'memory.min', bytes: number): Promise<ProtectionItem> {
    const v2 = this.layout!.v2!;
    if (v2.recursiveProt) return { state: 'applied', reason: `${file}=${bytes} (memory_recursiveprot is on)` };
    const blocking = await unprotectedAncestors(v2.mount, this.sliceDir!, file);
    if (blocking.length === 0) return { state: 'applied', reason: `${file}=${bytes}, every ancestor grants protection` };
    const first = blocking[0]!;
    return {
      state: 'ineffective',
      short: `ancestor ${cgroupPathIn(v2.mount, first.dir)} has ${file}=${first.value}`,
      reason: `${file}=${bytes} is set on the slice but capped: ${blocking.map((b) => `${cgroupPathIn(v2.mount, b.dir)} has ${file}=${b.value}`).join(', ')} and memory_recursiveprot is off in the cgroup2 mount options`,
      code: 'unavailable',
    };
  }

  private async recheckMemory(problems: string[]): Promise<ProtectionRepair[]> {
    const repairs: ProtectionRepair[] = [];
    for (const file of ['memory.low', 'memory.min'] as const) {
      const key = file === 'memory.low' ? 'memoryLow' : 'memoryMin';
      const bytes = this.spec[key];
      const item = this.items[key];
      if (bytes === undefined || this.sliceDir === null || (item.state !== 'applied' && item.state !== 'ineffective')) continue;
      try {
        const current = Number(await readCgroupFile(this.sliceDir, file));
        if (current !== Math.floor(bytes / 4096) * 4096 && current !== bytes) {
          this.items[key] = await this.applyMemoryFile(file, bytes);
          repairs.push({ what: file, from: String(current), to: String(bytes), kind: 'drift' });
        } else {
          this.items[key] = await this.effectiveness(file, bytes);
        }
      } catch (e) {
        problems.push(messageOf(e));
      }
    }
    return repairs;
  }

  // Keep every protected process in the slice; under systemd only report (the unit's Slice= decides).
  private async placeProcesses(pids: number[], table: Map<number, ProcessEntry>, problems: string[]): Promise<ProtectionRepair[]> {
    const repairs: ProtectionRepair[] = [];
    const v2 = this.layout?.v2 ?? null;
    const sliceRel = v2 !== null && this.sliceDir !== null ? cgroupPathIn(v2.mount, this.sliceDir) : null;
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
      if (inSlice === false && this.mayMove && this.sliceDir !== null) {
        try {
          await moveProcess(this.sliceDir, pid);
          repairs.push({ pid, what: 'cgroup', from: cgroup ?? '?', to: sliceRel!, kind: this.placed.has(pid) ? 'drift' : 'initial' });
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
    if (this.sliceDir !== null && outside.length > 0) {
      const why = this.systemd
        ? `under systemd the sentinel does not move unit processes; set Slice=${this.spec.slice} in their units (outside: ${outside.join(', ')})`
        : `could not move into the slice: ${outside.join(', ')}`;
      problems.push(why);
      this.items.slice = { state: 'refused', short: this.systemd ? 'targets outside it, set Slice=' : 'move failed', reason: why, code: 'not-permitted' };
    } else if (this.items.slice.state === 'refused' && outside.length === 0 && this.sliceDir !== null) {
      this.items.slice = { state: 'applied', reason: `all protected processes in ${this.sliceDir}` };
    }
    return repairs;
  }

  // Give every protected process the configured score; where -1000 is refused, the best the host allows (0).
  private async scoreProcesses(pids: number[], table: Map<number, ProcessEntry>, problems: string[]): Promise<ProtectionRepair[]> {
    const repairs: ProtectionRepair[] = [];
    const target = this.spec.oomScoreAdj;
    const fallback = Math.max(target, 0);
    let refusal: { reason: string; code: ErrorCode } | null = null;
    /** Writes that failed for another reason (a read-back mismatch, EACCES on a non-negative score). */
    const unscored: { reason: string; code: ErrorCode }[] = [];
    let atTarget = 0;
    let atFallback = 0;
    const byPid = new Map(this.processes.map((p) => [p.pid, p]));
    for (const pid of pids) {
      let current: number;
      try {
        current = await readOomScoreAdj(pid);
      } catch {
        continue;
      }
      const wanted = refusal === null ? target : fallback;
      let now = current;
      if (current !== target && !(refusal !== null && current <= fallback)) {
        try {
          now = await writeOomScoreAdj(pid, wanted);
        } catch (e) {
          if (isSentinelError(e, 'not-found')) continue;
          if (isSentinelError(e, 'not-permitted') && wanted < 0) {
            refusal = { reason: messageOf(e), code: e.code };
            if (current > fallback) {
              try {
                now = await writeOomScoreAdj(pid, fallback);
              } catch (e2) {
                problems.push(messageOf(e2));
              }
            }
          } else {
            problems.push(messageOf(e));
            unscored.push({ reason: messageOf(e), code: codeOf(e) });
          }
        }
      }
      if (now !== current) {
        const had = this.applied.get(pid);
        repairs.push({ pid, what: 'oom_score_adj', from: String(current), to: String(now), kind: had !== undefined ? 'drift' : 'initial' });
      }
      this.applied.set(pid, now);
      if (now === target) atTarget++;
      else if (now <= fallback) atFallback++;
      const entry = byPid.get(pid);
      if (entry !== undefined) entry.oomScoreAdj = now;
      else this.processes.push({ pid, comm: table.get(pid)?.comm ?? '?', oomScoreAdj: now, cgroup: null, inSlice: null });
    }
    for (const pid of this.applied.keys()) if (!table.has(pid)) this.applied.delete(pid);
    const n = atTarget + atFallback;
    if (refusal !== null || atFallback > 0) {
      const cap = /CAP_SYS_RESOURCE/.test(refusal?.reason ?? '') || refusal === null ? 'no CAP_SYS_RESOURCE' : 'refused by the kernel';
      this.effectiveScore = fallback;
      this.items.oom = {
        state: 'refused',
        short: `${cap}; kept at ${fallback}`,
        reason: `${refusal?.reason ?? `oom_score_adj=${target} was refused earlier`}; protected processes are kept at ${fallback} (the lowest this host allows), so only expendables with a higher score are killed first`,
        code: refusal?.code ?? 'not-permitted',
      };
      if (refusal !== null && this.lastRefusalLogged !== refusal.reason) {
        this.lastRefusalLogged = refusal.reason;
        this.deps.log.warn({ code: refusal.code }, `protection: ${refusal.reason}`);
        this.audit('refused', 'oom_score_adj', refusal.reason);
      }
    } else if (unscored.length > 0) {
      this.effectiveScore = null;
      this.items.oom = {
        state: 'refused',
        short: `${unscored.length} process(es) not scored`,
        reason: `oom_score_adj=${target} on ${n} process(es); not on ${unscored.length}: ${unscored.map((u) => u.reason).join('; ')}`,
        code: unscored[0]?.code ?? 'io',
      };
    } else if (pids.length === 0) {
      this.items.oom = { state: 'pending', short: 'no protected process yet', reason: 'no target process is running' };
      this.effectiveScore = null;
    } else {
      this.effectiveScore = target;
      this.items.oom = { state: 'applied', reason: `oom_score_adj=${target} on ${n} process(es), read back` };
    }
    return repairs;
  }

  private lastRefusalLogged: string | null = null;

  // Expendable processes (not protected ones) get their configured higher score.
  private async scoreExpendables(protectedSet: Set<number>, table: Map<number, ProcessEntry>, problems: string[]): Promise<ProtectionRepair[]> {
    const rules = this.spec.expendable;
    if (rules.length === 0) {
      this.items.expendable = { state: 'off' };
      this.expendables = [];
      return [];
    }
    const compiled = rules.map((r: ExpendableSpec) => ({
      comm: r.comm === undefined ? null : new RegExp(r.comm),
      cmdline: r.cmdline === undefined ? null : new RegExp(r.cmdline),
      score: r.oomScoreAdj,
    }));
    const repairs: ProtectionRepair[] = [];
    const found: ProtectionStatus['expendables'] = [];
    let failed = 0;
    for (const p of table.values()) {
      if (protectedSet.has(p.pid) || p.pid === process.pid || p.cmdline === '') continue;
      const rule = compiled.find((r) => (r.comm === null || r.comm.test(p.comm)) && (r.cmdline === null || r.cmdline.test(p.cmdline)));
      if (rule === undefined) continue;
      try {
        const current = await readOomScoreAdj(p.pid);
        let now = current;
        if (current !== rule.score) {
          now = await writeOomScoreAdj(p.pid, rule.score);
          repairs.push({ pid: p.pid, what: 'expendable', from: String(current), to: String(now), kind: this.expendableApplied.has(p.pid) ? 'drift' : 'initial' });
        }
        this.expendableApplied.set(p.pid, now);
        found.push({ pid: p.pid, comm: p.comm, oomScoreAdj: now });
      } catch (e) {
        if (isSentinelError(e, 'not-found')) continue;
        failed++;
        problems.push(messageOf(e));
      }
    }
    for (const pid of this.expendableApplied.keys()) if (!table.has(pid)) this.expendableApplied.delete(pid);
    this.expendables = found;
    this.items.expendable =
      failed > 0
        ? { state: 'refused', short: `${failed} could not be scored`, reason: problems.join('; '), code: 'not-permitted' }
        : { state: 'applied', reason: `${found.length} expendable process(es) scored` };
    return repairs;
  }

  // Per item: applied / refused with reason / unsupported with reason (for status --json and doctor).
  status(): ProtectionStatus {
    return {
      hierarchy: this.layout?.kind ?? 'unknown',
      systemd: this.systemd,
      slice: this.spec.slice,
      sliceDir: this.sliceDir,
      items: { ...this.items },
      effectiveOomScoreAdj: this.effectiveScore,
      processes: this.processes.map((p) => ({ ...p })),
      expendables: this.expendables.map((e) => ({ ...e })),
      lastCheck: this.lastCheck?.toISOString() ?? null,
    };
  }

  // One line for systemd's STATUS=: what holds and what does not, and why.
  statusLine(): string {
    const part = (label: string, item: ProtectionItem): string | null => {
      if (item.state === 'off') return null;
      if (item.state === 'applied') return `${label} ok`;
      return `${label} ${item.state}${item.short !== undefined ? ` (${item.short})` : ''}`;
    };
    const parts = [
      part('slice', this.items.slice),
      part(`oom ${this.spec.oomScoreAdj}`, this.items.oom),
      part('memory.low', this.items.memoryLow),
      part('memory.min', this.items.memoryMin),
      part('expendable', this.items.expendable),
    ].filter((p): p is string => p !== null);
    return `protection: ${parts.join(', ')}`;
  }
}

// Under systemd: start (or adopt) the slice unit so its cgroup exists; systemd owns it.
async function ensureSliceUnderSystemd(slice: string, dir: string): Promise<{ created: boolean }> {
  try {
    await readCgroupFile(dir, 'cgroup.procs');
    return { created: false };
  } catch {
    await startUnit(slice);
    await readCgroupFile(dir, 'cgroup.procs');
    return { created: true };
  }
}

/** What this host can do for protection, without changing anything (for `sentinel doctor`). */
export interface ProtectionSupport {
  hierarchy: CgroupLayout['kind'];
  cgroup2Mount: string | null;
  systemd: boolean;
  v2MemoryController: boolean;
  v1MemoryController: string | null;
  memoryRecursiveProt: boolean;
  capSysResource: boolean;
  /** One line per thing that will not be protected, with the reason. */
  limits: string[];
}

// Read-only probe of the host's protection abilities: the doctor's answer to "what will not be protected here?".
export async function probeProtectionSupport(): Promise<ProtectionSupport> {
  const layout = await detectCgroupLayout();
  const systemd = await isSystemdInit();
  const v2 = layout.v2;
  const v2MemoryController = v2 !== null && (await availableControllers(v2.mount).catch(() => [] as string[])).includes('memory');
  const capSysResource = await hasCapability(CAP_SYS_RESOURCE).catch(() => false);
  const limits: string[] = [];
  if (v2 === null) limits.push(`slice: no cgroup v2 mount (${layout.kernelHasCgroup2 ? 'cgroup2 not mounted' : 'kernel without cgroup2'})`);
  if (!v2MemoryController) {
    limits.push(
      layout.v1.memory !== undefined
        ? `memory.low/memory.min: the memory controller is bound to cgroup v1 (${layout.v1.memory}); cgroup v2 has none`
        : 'memory.low/memory.min: no memory controller on cgroup v2',
    );
  } else if (v2 !== null && !v2.recursiveProt) {
    limits.push('memory.low/memory.min: memory_recursiveprot is off; ancestors of the slice must grant protection too');
  }
  if (!capSysResource) limits.push('oom_score_adj=-1000: no CAP_SYS_RESOURCE; protected processes stay at 0, only expendables are scored higher');
  return {
    hierarchy: layout.kind,
    cgroup2Mount: v2?.mount ?? null,
    systemd,
    v2MemoryController,
    v1MemoryController: layout.v1.memory ?? null,
    memoryRecursiveProt: v2?.recursiveProt ?? false,
    capSysResource,
    limits,
  };
}
