// The launcher of a `pidFile` target: started by the operator's own `restart` command and found
// through its pid file (docs/EBPF.md#recovery).
import { SentinelError } from '../../core/errors.js';
import type { ProcIdentity } from '../../adapters/proc.js';
import { runRecoveryCommand } from '../../adapters/process.js';
import type { TargetSpec } from './spec.js';
import { killNow, type LaunchContext, type Launched, type Launcher } from './launcher.js';
import { readTrustedPid } from './pid-file-trust.js';

// Why: a `pidFile` target is started by the operator's own `restart` command and found through its pid file.
export class PidFileLauncher implements Launcher {
  readonly kind = 'pidFile';
  readonly action = 'restart command';
  readonly ownsProcess = false;
  readonly returnsOutside = false;

  constructor(private readonly spec: TargetSpec) {}

  async launch(ctx: LaunchContext): Promise<Launched> {
    const file = this.spec.pidFile ?? '';
    const adopted = ctx.first ? null : await this.restartedElsewhere(file, ctx.lastPid);
    if (adopted !== null) {
      ctx.log.info({ target: this.spec.name, pid: adopted.pid }, 'pid file already names a new live process; adopting it instead of restarting');
    } else if (!ctx.first) {
      await runRecoveryCommand(this.spec.restart ?? [], this.spec.restartTimeoutMs, file);
    }
    // Only a PID the file's writer may name (pid-file-trust.ts); its identity is the one checked.
    const identity = adopted ?? (await this.waitForPidFile(file, ctx.first ? 0 : this.spec.pidFileWaitMs, ctx));
    return { identity, child: null };
  }

  kill(proc: ProcIdentity | null): Promise<void> {
    return killNow(proc, null);
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  giveUp(proc: ProcIdentity | null): Promise<void> {
    return killNow(proc, null);
  }

  // Why: an operator (or the program's own supervisor) may have restarted it already; a second
  // instance would only fight the first one for its port.
  private async restartedElsewhere(file: string, lastPid: number | null): Promise<ProcIdentity | null> {
    try {
      const { pid, identity } = await readTrustedPid(file);
      return pid !== lastPid ? identity : null;
    } catch {
      // unreadable or refused: the restart command runs and the wait below reports a refusal
      return null;
    }
  }

  // Why: a restarted program writes its pid file a little after starting; wait, bounded.
  private async waitForPidFile(file: string, waitMs: number, ctx: LaunchContext): Promise<ProcIdentity> {
    const deadline = ctx.now() + waitMs;
    for (;;) {
      try {
        const { pid, identity } = await readTrustedPid(file);
        if (identity !== null) return identity;
        if (ctx.now() >= deadline) throw new SentinelError('unavailable', `pid file names PID ${pid}, which is not running`, { where: file });
      } catch (e) {
        if (ctx.now() >= deadline) throw e;
      }
      await ctx.sleep(PID_FILE_RETRY_MS);
    }
  }
}

/** Re-read interval of a pid file while waiting for it, ms. */
const PID_FILE_RETRY_MS = 20;
