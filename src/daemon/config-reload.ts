// What a SIGHUP may change in the running daemon, and what it must leave at its running value
// (docs/CONFIG.md: the settings a reload applies; every other change waits for a restart).
import type { DaemonConfig } from './config.js';

/** Settings a SIGHUP applies to the running daemon; every other change waits for a restart (and is logged as ignored). */
export const LIVE_RELOAD_KEYS = new Set(['log.level', 'vault.onTamper', 'vault.trust', 'vault.threshold', 'limits.verifyIntervalMs', 'limits.flagAuditIntervalMs', 'limits.tamperDebounceMs', 'limits.maxVerifyAgeMs']);

function settingsOf(c: DaemonConfig): Map<string, string> {
  const out = new Map<string, string>();
  for (const [section, value] of Object.entries(c)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out.set(`${section}.${k}`, JSON.stringify(v) ?? 'undefined');
    } else out.set(section, JSON.stringify(value) ?? 'undefined');
  }
  return out;
}

// Why: a reload reports every setting it did not apply, not only a few known ones.
export function changedKeys(a: DaemonConfig, b: DaemonConfig): string[] {
  const x = settingsOf(a);
  const y = settingsOf(b);
  return [...new Set([...x.keys(), ...y.keys()])].filter((k) => x.get(k) !== y.get(k)).sort();
}

// Why: the running configuration says what is in force: the old value for everything a reload cannot apply.
export function withLiveKeys(current: DaemonConfig, next: DaemonConfig): DaemonConfig {
  return {
    ...current,
    log: { ...current.log, level: next.log.level },
    vault: { ...current.vault, onTamper: next.vault.onTamper, trust: next.vault.trust, threshold: next.vault.threshold },
    limits: { ...current.limits, verifyIntervalMs: next.limits.verifyIntervalMs, flagAuditIntervalMs: next.limits.flagAuditIntervalMs, tamperDebounceMs: next.limits.tamperDebounceMs, maxVerifyAgeMs: next.limits.maxVerifyAgeMs },
  };
}
