// Opens the daemon's audit log at start: its directory made, the chain head kept in the state directory, and every
// failure named by the setting it comes from (`audit.path`, `stateDir`).
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SentinelError } from '../core/errors.js';
import { ioError } from '../core/errno.js';
import { AuditLog, type AppendFlagSetter, type AuditOpenReport } from '../adapters/audit-log.js';
import type { Logger } from '../adapters/logger.js';

/** The file in the state directory that keeps the last record written to the audit log. */
export const AUDIT_HEAD_FILE = 'audit-head.json';

function named(e: unknown, what: string, setting: string, path: string): SentinelError {
  const err = ioError(e, what, path);
  return new SentinelError(err.code, err.message, { where: `${setting}: ${err.where ?? path}`, cause: e });
}

// Why: a misconfigured path (under a regular file, unwritable) fails start with one line naming the setting.
export async function openDaemonAudit(cfg: { auditPath: string; stateDir: string; appendOnly: boolean }, deps: { flags: AppendFlagSetter; log: Logger }): Promise<{ auditLog: AuditLog; report: AuditOpenReport }> {
  try {
    await mkdir(dirname(cfg.auditPath), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw named(e, 'cannot create the audit log directory', 'audit.path', cfg.auditPath);
  }
  try {
    await mkdir(cfg.stateDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw named(e, 'cannot create the state directory', 'stateDir', cfg.stateDir);
  }
  let opened: { log: AuditLog; report: AuditOpenReport };
  try {
    opened = await AuditLog.open(cfg.auditPath, { flags: cfg.appendOnly ? deps.flags : undefined, now: () => new Date(), headFile: join(cfg.stateDir, AUDIT_HEAD_FILE) });
  } catch (e) {
    throw named(e, 'cannot open the audit log', 'audit.path', cfg.auditPath);
  }
  const { report } = opened;
  if (report.brokenAt !== undefined) deps.log.error({ event: 'audit-chain', where: report.brokenAt.line, err: report.brokenAt.message }, 'audit log chain is broken; appending after it');
  if (report.trimmedFragment !== undefined) deps.log.warn({ event: 'audit-repaired', where: cfg.auditPath, ...report.trimmedFragment }, 'cut an incomplete last line off the audit log');
  if (report.continued !== undefined) deps.log.error({ event: 'tamper', target: 'audit-log', where: cfg.auditPath, ...report.continued }, `${report.continued.reason}; a new chain continues seq ${String(report.continued.seq)}`);
  return { auditLog: opened.log, report };
}
