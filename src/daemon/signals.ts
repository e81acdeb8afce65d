// The daemon's signal handlers, installed before anything of start-up can be waited on: a SIGTERM, SIGINT or
// SIGHUP that arrives while the daemon is still starting is held, not left to Node's default (death by the
// signal, no stop record), and acted on as soon as the daemon can (docs/DAEMON.md#start-up-readiness-shutdown).
// Loads nothing: `sentinel daemon` installs it before it loads the daemon itself.

export type StopSignal = 'SIGTERM' | 'SIGINT';

/** What a running daemon does with a signal. */
export interface SignalActions {
  stop(reason: StopSignal): unknown;
  reload(): unknown;
}

/** Thrown out of start-up when a held stop signal ended it once the audit log took the start record. */
export class StoppedWhileStarting extends Error {
  constructor(readonly reason: StopSignal) {
    super(`stopped by ${reason} while starting`);
    this.name = 'StoppedWhileStarting';
  }
}

export function isStoppedWhileStarting(e: unknown): e is StoppedWhileStarting {
  return e instanceof StoppedWhileStarting;
}

// Why: one object from the daemon command's first line to its exit; until `running` hands it the actions,
// a stop signal is held (the first one is the reason) and a SIGHUP is remembered for one reload after start.
export class DaemonSignals {
  private stopReason: StopSignal | null = null;
  private reloadHeld = false;
  private actions: SignalActions | null = null;
  private readonly handlers: [NodeJS.Signals, () => void][] = [
    ['SIGTERM', () => this.stop('SIGTERM')],
    ['SIGINT', () => this.stop('SIGINT')],
    ['SIGHUP', () => this.reload()],
  ];

  install(): this {
    for (const [signal, handler] of this.handlers) process.on(signal, handler);
    return this;
  }

  /** The held stop signal, if one arrived before the daemon was running. */
  get heldStop(): StopSignal | null {
    return this.actions === null ? this.stopReason : null;
  }

  /** Start-up calls this where it can stop cleanly (the start record written): a held stop ends start-up there. */
  checkpoint(): void {
    if (this.heldStop !== null) throw new StoppedWhileStarting(this.heldStop);
  }

  /** The daemon is running: a held stop or reload is acted on now, later signals at once. */
  running(actions: SignalActions): void {
    this.actions = actions;
    if (this.stopReason !== null) actions.stop(this.stopReason);
    else if (this.reloadHeld) actions.reload();
    this.reloadHeld = false;
  }

  private stop(reason: StopSignal): void {
    if (this.actions === null && this.stopReason !== null) {
      // A second stop signal while still starting: start-up may be stuck where no checkpoint comes (a hung
      // file system, a FIFO as the audit log), so this one ends the process as Node's default would.
      for (const [signal, handler] of this.handlers) process.off(signal, handler);
      process.kill(process.pid, reason);
      return;
    }
    this.stopReason ??= reason;
    this.actions?.stop(reason);
  }

  private reload(): void {
    if (this.actions === null) this.reloadHeld = true;
    else this.actions.reload();
  }
}
