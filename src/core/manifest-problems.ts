// How the manifest rules report: every problem of one pass collected (capped), then one error that
// names them all. Part of the manifest rules (manifest-rules.ts).
import { SentinelError, type ErrorCode } from './errors.js';

/** Problems found in one pass, so a bad manifest is reported with every bad field it has (capped). */
export class Problems {
  readonly list: { code: ErrorCode; where: string; message: string }[] = [];
  count = 0;
  add(code: ErrorCode, where: string, message: string): void {
    this.count++;
    if (this.list.length < 20) this.list.push({ code, where, message });
  }
  throwIfAny(): void {
    const first = this.list[0];
    if (first === undefined) return;
    if (this.count === 1) throw new SentinelError(first.code, first.message, { where: first.where });
    const more = this.count > this.list.length ? `; and ${this.count - this.list.length} more` : '';
    throw new SentinelError(first.code, `${this.count} problems: ${this.list.map((p) => `${p.where}: ${p.message}`).join('; ')}${more}`, { where: first.where });
  }
}
