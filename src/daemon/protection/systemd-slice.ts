// The slice when systemd is PID 1: a slice unit systemd owns. The sentinel starts or adopts it, sets
// MemoryLow=/MemoryMin= through systemd, and leaves unit processes where their unit put them.
import { join } from 'node:path';
import { SentinelError, isSentinelError, messageOf } from '../../core/errors.js';
import { readCgroupFile } from '../../adapters/cgroup.js';
import { systemdSliceCgroupPath } from '../../adapters/cgroup-layout.js';
import { PAGE_SIZE } from '../../adapters/cgroup-memory.js';
import { setUnitProperties, startUnit } from '../../adapters/systemctl.js';
import { wholePages } from './policy.js';
import type { MemoryFile, ProtectionItem, SliceMode } from './types.js';

// Why: moving a unit's process behind systemd's back would fight systemd (docs/PROTECTION.md#what-is-protected).
export class SystemdSlice implements SliceMode {
  readonly systemd = true;
  readonly mayMove = false;
  sliceDir: string | null;

  constructor(
    private readonly slice: string,
    v2Mount: string,
  ) {
    this.sliceDir = join(v2Mount, systemdSliceCgroupPath(slice));
  }

  // Start (or adopt) the slice unit so its cgroup exists; systemd creates and owns it.
  async setup(): Promise<ProtectionItem> {
    const dir = this.sliceDir ?? '';
    try {
      let created = false;
      try {
        await readCgroupFile(dir, 'cgroup.procs');
      } catch {
        await startUnit(this.slice);
        await readCgroupFile(dir, 'cgroup.procs');
        created = true;
      }
      return { state: 'applied', reason: `${this.slice} ${created ? 'started' : 'adopted'} (systemd unit)` };
    } catch (e) {
      this.sliceDir = null;
      return { state: 'refused', short: 'systemctl failed', reason: messageOf(e), code: isSentinelError(e) ? e.code : 'io' };
    }
  }

  // systemd re-creates its own slice; nothing for the sentinel to restore.
  restore(): Promise<boolean> {
    return Promise.resolve(false);
  }

  // Why: a value set with `systemctl set-property --runtime` stays set; it is read back from the cgroup.
  async writeMemory(file: MemoryFile, bytes: number): Promise<void> {
    await setUnitProperties(this.slice, { [file === 'memory.low' ? 'MemoryLow' : 'MemoryMin']: String(bytes) });
    const back = Number(await readCgroupFile(this.sliceDir ?? '', file));
    if (back < wholePages(bytes, PAGE_SIZE)) {
      throw new SentinelError('internal', `${file} reads ${back} after systemctl set-property ${file === 'memory.low' ? 'MemoryLow' : 'MemoryMin'}=${bytes}`, { where: join(this.sliceDir ?? '', file) });
    }
  }

  move(pid: number): Promise<void> {
    return Promise.reject(new SentinelError('internal', `under systemd the sentinel does not move process ${pid}`, { where: this.slice }));
  }

  outside(where: string[]): { reason: string; short: string } {
    return { reason: `under systemd the sentinel does not move unit processes; set Slice=${this.slice} in their units (outside: ${where.join(', ')})`, short: 'targets outside it, set Slice=' };
  }

  release(): Promise<void> {
    return Promise.resolve();
  }
}
