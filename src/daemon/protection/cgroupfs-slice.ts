// The slice without systemd: a cgroup directory the sentinel creates (or adopts) under the cgroup2
// mount or `cgroupRoot`, moves protected processes into, and gives a memory floor itself.
import { join } from 'node:path';
import { isSentinelError, messageOf } from '../../core/errors.js';
import { cgroupPathIn, enableSubtreeController, ensureCgroup, moveProcess, readCgroupProcs, removeCgroup } from '../../adapters/cgroup.js';
import { writeMemoryProtection } from '../../adapters/cgroup-memory.js';
import type { MemoryFile, ProtectionAudit, ProtectionItem, SliceMode } from './types.js';

// Why: with no systemd to own it, the sentinel owns the slice: makes it, fills it, and makes it again if removed.
export class CgroupfsSlice implements SliceMode {
  readonly systemd = false;
  mayMove = false;
  sliceDir: string | null = null;
  /** The sentinel made the slice itself: removed on stop if nothing is left in it. */
  private created = false;

  constructor(
    private readonly slice: string,
    private readonly root: string,
    private readonly v2Mount: string,
    private readonly audit: ProtectionAudit,
  ) {}

  async setup(): Promise<ProtectionItem> {
    if (this.root !== this.v2Mount && !this.root.startsWith(`${this.v2Mount}/`)) {
      const reason = `cgroupRoot ${this.root} is not under the cgroup2 mount ${this.v2Mount}`;
      this.audit('refused', 'slice', reason);
      return { state: 'refused', short: 'cgroupRoot not on cgroup v2', reason, code: 'config' };
    }
    const dir = join(this.root, this.slice);
    try {
      const { created } = await ensureCgroup(dir);
      this.sliceDir = dir;
      this.created ||= created;
      this.mayMove = true;
      if (created) this.audit('apply', 'slice', `created ${dir}`);
      return { state: 'applied', reason: `${dir} ${created ? 'created' : 'adopted'}` };
    } catch (e) {
      this.sliceDir = null;
      this.mayMove = false;
      this.audit('refused', 'slice', messageOf(e));
      const ro = /read-only/.test(messageOf(e));
      return { state: 'refused', short: ro ? 'read-only cgroupfs' : 'cannot create', reason: messageOf(e), code: isSentinelError(e) ? e.code : 'io' };
    }
  }

  // Someone removed our slice: make it again (the memory settings are rewritten by the next check).
  async restore(): Promise<boolean> {
    if (this.sliceDir === null || !this.mayMove) return false;
    return (await ensureCgroup(this.sliceDir)).created;
  }

  // Why: each level from the v2 root down to the slice's parent must offer memory to its children.
  async writeMemory(file: MemoryFile, bytes: number): Promise<void> {
    const dir = this.sliceDir ?? '';
    const parent = join(dir, '..');
    let level = this.v2Mount;
    await enableSubtreeController(level, 'memory');
    for (const part of cgroupPathIn(this.v2Mount, parent).split('/').filter((p) => p !== '')) {
      level = join(level, part);
      await enableSubtreeController(level, 'memory');
    }
    await writeMemoryProtection(dir, file, bytes);
  }

  async move(pid: number): Promise<void> {
    await moveProcess(this.sliceDir ?? '', pid);
  }

  outside(where: string[]): { reason: string; short: string } {
    return { reason: `could not move into the slice: ${where.join(', ')}`, short: 'move failed' };
  }

  // Protection stays in place at stop; only an empty slice the sentinel made itself goes.
  async release(): Promise<void> {
    if (!this.created || this.sliceDir === null) return;
    if ((await readCgroupProcs(this.sliceDir).catch(() => [0])).length > 0) return;
    await removeCgroup(this.sliceDir).catch(() => undefined);
    this.created = false;
  }
}
