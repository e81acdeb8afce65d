// Where CLI output goes: results on stdout (JSON or text), progress and warnings on stderr.

// Prints one JSON document on stdout (the only thing a `--json` command writes there).
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

// Prints human-readable lines on stdout.
export function printLines(...lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

// A one-line progress bar on stderr, only for a TTY (never in --json, never into logs). `shown`:
// whether it draws anything, so a caller can skip the work of feeding it otherwise.
export function progressBar(label: string, enabled: boolean): { shown: boolean; update(done: number, total: number): void; end(): void } {
  const tty = enabled && process.stderr.isTTY === true;
  let last = -1;
  return {
    shown: tty,
    update(done: number, total: number) {
      if (!tty || total <= 0) return;
      const pct = Math.floor((done / total) * 100);
      if (pct === last) return;
      last = pct;
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}%`);
    },
    end() {
      if (tty && last >= 0) process.stderr.write('\r\x1b[K');
    },
  };
}
