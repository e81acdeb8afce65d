// What this host can do for protection, read without changing anything: the doctor's answer to
// "what will not be protected here, and why?" (docs/PROTECTION.md#what-is-not-protected-and-why).
import { availableControllers } from '../../adapters/cgroup.js';
import { detectCgroupLayout, isSystemdInit } from '../../adapters/cgroup-layout.js';
import { CAP_SYS_RESOURCE, hasCapability } from '../../adapters/oom.js';
import type { ProtectionSupport } from './types.js';

// Why: `sentinel doctor` reports the limits of this host before the daemon meets them.
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
