// The slice's memory floor (memory.low, memory.min): set where cgroup v2 has the memory controller,
// read back, judged against its ancestors, and rewritten when it drifted (docs/PROTECTION.md).
import { join } from 'node:path';
import { isSentinelError, messageOf } from '../../core/errors.js';
import { availableControllers, cgroupPathIn, readCgroupFile } from '../../adapters/cgroup.js';
import type { CgroupLayout } from '../../adapters/cgroup-layout.js';
import { PAGE_SIZE, unprotectedAncestors } from '../../adapters/cgroup-memory.js';
import { effectivenessItem, memoryHolds, memoryUnsupportedItem } from './policy.js';
import type { ProtectionSpec } from './spec.js';
import type { MemoryFile, ProtectionAudit, ProtectionItem, ProtectionItems, ProtectionRepair, SliceMode } from './types.js';

const FILES = [
  ['memory.low', 'memoryLow'],
  ['memory.min', 'memoryMin'],
] as const;

// Why: the floor is written once at start and re-checked on every full pass, whichever mode owns the slice.
export class MemoryFloor {
  constructor(
    private readonly spec: ProtectionSpec,
    private readonly layout: CgroupLayout,
    private readonly mode: SliceMode | null,
    private readonly audit: ProtectionAudit,
  ) {}

  /** Apply both settings; their items go into `items`. */
  async apply(items: ProtectionItems): Promise<void> {
    for (const [file, key] of FILES) items[key] = await this.applyFile(file, this.spec[key]);
  }

  // Why: a changed memory.low/min is rewritten (drift); an unchanged one is judged again against its ancestors.
  async recheck(items: ProtectionItems, problems: string[]): Promise<ProtectionRepair[]> {
    const repairs: ProtectionRepair[] = [];
    const dir = this.mode?.sliceDir ?? null;
    for (const [file, key] of FILES) {
      const bytes = this.spec[key];
      const state = items[key].state;
      if (bytes === undefined || dir === null || (state !== 'applied' && state !== 'ineffective')) continue;
      try {
        const current = Number(await readCgroupFile(dir, file));
        if (!memoryHolds(current, bytes, PAGE_SIZE)) {
          items[key] = await this.applyFile(file, bytes);
          repairs.push({ what: file, from: String(current), to: String(bytes), kind: 'drift' });
        } else {
          items[key] = await this.effectiveness(file, bytes);
        }
      } catch (e) {
        problems.push(messageOf(e));
      }
    }
    return repairs;
  }

  private async applyFile(file: MemoryFile, bytes: number | undefined): Promise<ProtectionItem> {
    if (bytes === undefined) return { state: 'off' };
    const unsupported = await this.unsupported();
    if (unsupported !== null) {
      this.audit('refused', file, unsupported.reason ?? '');
      return unsupported;
    }
    try {
      await this.mode?.writeMemory(file, bytes);
    } catch (e) {
      const item: ProtectionItem = { state: 'refused', short: isSentinelError(e, 'not-permitted') ? 'not permitted' : 'write failed', reason: messageOf(e), code: isSentinelError(e) ? e.code : 'io' };
      this.audit('refused', file, item.reason ?? '');
      return item;
    }
    this.audit('apply', file, `${bytes} bytes on ${this.mode?.sliceDir ?? ''}`);
    return this.effectiveness(file, bytes);
  }

  // Why memory.low/min cannot be set on this host, or null when the v2 memory controller is there.
  private async unsupported(): Promise<ProtectionItem | null> {
    const v2 = this.layout.v2;
    const dir = this.mode?.sliceDir ?? null;
    if (v2 === null || dir === null) return { state: 'unsupported', short: 'no slice', reason: 'the slice cgroup could not be set up', code: 'unavailable' };
    const parent = join(dir, '..');
    const controllers = await availableControllers(parent).catch(() => [] as string[]);
    return controllers.includes('memory') ? null : memoryUnsupportedItem(this.layout.v1.memory, v2.mount, parent);
  }

  private async effectiveness(file: MemoryFile, bytes: number): Promise<ProtectionItem> {
    const v2 = this.layout.v2;
    const dir = this.mode?.sliceDir ?? null;
    if (v2 === null || dir === null) return { state: 'unsupported', short: 'no slice', reason: 'the slice cgroup could not be set up', code: 'unavailable' };
    if (v2.recursiveProt) return effectivenessItem(file, bytes, true, []);
    const blocking = await unprotectedAncestors(v2.mount, dir, file);
    return effectivenessItem(file, bytes, false, blocking.map((b) => ({ rel: cgroupPathIn(v2.mount, b.dir), value: b.value })));
  }
}
