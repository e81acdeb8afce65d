// The human form of `sentinel status`: one labelled line per part of the daemon's report, plain
// words and full release ids, never raw JSON (that is what --json is for).
import type { Paint } from './style.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// A scalar in words; objects are flattened by `fields`, so this never prints JSON.
function text(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.map(text).join(', ');
  return fields(v as Obj);
}

// `a 1, b.c 2`: an object of unknown shape as words (a component this CLI does not know yet).
function fields(o: Obj, prefix = ''): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (isObj(v)) {
      const nested = fields(v, `${prefix}${k}.`);
      if (nested !== '') parts.push(nested);
    } else parts.push(`${prefix}${k} ${text(v)}`);
  }
  return parts.join(', ');
}

function seconds(ms: unknown): string {
  const n = Number(ms);
  if (!Number.isFinite(n)) return '-';
  const s = Math.round(n / 1000);
  if (s < 120) return `${String(s)}s`;
  if (s < 7200) return `${String(Math.round(s / 60))}m`;
  return `${String(Math.round(s / 3600))}h`;
}

function vaultLine(v: Obj, c: Paint): string {
  const lv = isObj(v.lastVerify) ? v.lastVerify : null;
  if (v.version === null || v.version === undefined) return `vault:    ${text(v.path)} empty: waiting for the first signed release; on tamper: ${text(v.onTamper)}`;
  const state = lv === null ? 'not verified yet' : lv.ok === true ? c.green('intact') : c.red('VIOLATED');
  const when = lv === null ? '' : ` (verified ${seconds(lv.agoMs)} ago)`;
  return `vault:    ${text(v.path)} v${text(v.version)} release ${text(v.releaseId)} ${state}${when}; sealed: ${v.sealed === true ? 'yes' : c.red('no')}; on tamper: ${text(v.onTamper)}`;
}

/** What the target line says in place of the engine's reason, which the ebpf line gives in full. */
const NO_ENGINE = 'no eBPF engine, see ebpf';

// A target's `degraded` in words. Without an engine every part of it embeds the engine's reason
// (exits: "R; polling /proc", stalls: "... unavailable: R"): said once on the ebpf line, here each
// part only names what is missing ("polling /proc" is the detection mode already).
function degradedText(degraded: string, engineReason: string | null): string {
  if (engineReason === null || engineReason === '' || !degraded.includes(engineReason)) return degraded;
  const parts = degraded
    .split(engineReason)
    .join('\0')
    .split('; ')
    .filter((p) => p !== 'polling /proc')
    .map((p) => (p === '\0' ? NO_ENGINE : p.replace(/: \0$/, '')));
  if (!parts.includes(NO_ENGINE)) parts.unshift(NO_ENGINE);
  return [...new Set(parts)].join('; ').split('\0').join('no eBPF engine');
}

function targetLine(t: Obj, c: Paint, engineReason: string | null): string {
  const state = text(t.state);
  const painted = state === 'running' ? c.green(state) : state === 'failed' ? c.red(state) : c.yellow(state);
  const degraded = typeof t.degraded === 'string' ? degradedText(t.degraded, engineReason) : t.degraded;
  const parts = [`${text(t.name)} ${painted}`, `pid ${text(t.pid)}`, `detection ${text(t.mode)}${degraded !== null && degraded !== undefined ? ` (degraded: ${text(degraded)})` : ''}`, `restarts ${text(t.restarts)}`];
  if (typeof t.lastRecoveryLatencyMs === 'number') parts.push(`last recovery ${t.lastRecoveryLatencyMs.toFixed(1)} ms`);
  if (t.stalled === true) parts.push(c.red('STALLED: main thread away from its wait syscall past the threshold'));
  if (t.failedReason !== null && t.failedReason !== undefined) parts.push(c.red(`failed: ${text(t.failedReason)}`));
  return `target:   ${parts.join(', ')}`;
}

// Why the daemon has no eBPF engine (null when it has one): the one place the text says it in full.
function engineReasonOf(e: unknown): string | null {
  return isObj(e) && e.mode !== 'ebpf' && typeof e.reason === 'string' && e.reason !== '' ? e.reason : null;
}

// The daemon's eBPF engine: on with its groups and load time, or off with why (exits are polled then).
function ebpfLine(e: Obj, c: Paint): string {
  if (e.mode !== 'ebpf') return `ebpf:     ${c.yellow('off')}, exits polled from /proc (${text(e.reason)})`;
  return `ebpf:     ${c.green('on')} (${text(e.groups)}), loaded in ${text(e.loadMs)} ms, attached in ${text(e.attachMs)} ms, ${text(e.exitWatched)} exit(s) watched`;
}

function protectionLines(p: Obj, c: Paint): string[] {
  const items = isObj(p.items) ? p.items : {};
  const words = Object.entries(items).flatMap(([name, item]) => {
    if (!isObj(item) || item.state === 'off') return [];
    const state = text(item.state);
    const painted = state === 'applied' ? c.green(state) : state === 'pending' ? state : c.yellow(state);
    const why = item.short ?? item.reason;
    return [`${name} ${painted}${why !== undefined && why !== null ? ` (${text(why)})` : ''}`];
  });
  const procs = Array.isArray(p.processes) ? p.processes.length : 0;
  return [`protection: ${text(p.hierarchy)} hierarchy, slice ${text(p.slice)}; ${words.join(', ') || 'nothing configured'}; ${String(procs)} process(es) protected`];
}

// The lines of `sentinel status` for a status reply (the `result` of `{"op":"status"}`).
export function describeDaemonStatus(r: Obj, c: Paint): string[] {
  const d = isObj(r.daemon) ? r.daemon : {};
  const v = isObj(r.vault) ? r.vault : {};
  const w = isObj(r.watchdog) ? r.watchdog : {};
  const lines = [
    `daemon:   pid ${text(d.pid)}, version ${text(d.version)}, up ${seconds(d.uptimeMs)}${d.busyWith !== null && d.busyWith !== undefined ? `, busy: ${text(d.busyWith)}` : ''}${typeof d.queued === 'number' && d.queued > 0 ? `, ${String(d.queued)} queued` : ''}`,
    vaultLine(v, c),
    `watchdog: ${w.notify === true ? `systemd notify on, period ${w.periodUsec === null || w.periodUsec === undefined ? 'off' : `${String(Number(w.periodUsec) / 1e6)}s`}` : 'not under systemd'}, healthy: ${w.healthy === true ? c.green('yes') : c.red('no')}${w.reason !== null && w.reason !== undefined ? ` (${text(w.reason)})` : ''}, pings ${text(w.pings)}`,
  ];
  if (isObj(r.counters)) lines.push(`counters: ${fields(r.counters)}`);
  if (isObj(r.tamperWatch)) lines.push(`watch:    ${text(r.tamperWatch.directories)} directories, ${text(r.tamperWatch.events)} events, flag tracer ${text(r.tamperWatch.flagTracer)}`);
  if (isObj(r.inbox)) lines.push(`inbox:    ${text(r.inbox.dir)}, ${text(r.inbox.processed)} processed`);
  const components = isObj(r.components) ? r.components : {};
  const engineReason = engineReasonOf(components.ebpf);
  for (const [name, value] of Object.entries(components)) {
    if (name === 'targets' && Array.isArray(value)) for (const t of value) lines.push(isObj(t) ? targetLine(t, c, engineReason) : `target:   ${text(t)}`);
    else if (name === 'protection' && isObj(value)) lines.push(...protectionLines(value, c));
    else if (name === 'ebpf' && isObj(value)) lines.push(ebpfLine(value, c));
    else lines.push(`${name}: ${text(value)}`);
  }
  // STATUS= as systemd shows it, less the engine's reason (the ebpf line above gives it).
  if (d.statusLine !== undefined) lines.push(`STATUS:   ${engineReason === null ? text(d.statusLine) : text(d.statusLine).split(` (${engineReason})`).join('')}`);
  return lines;
}
