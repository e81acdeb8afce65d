// Reads one control request line as it arrives: a JSON object scanned byte by byte, so a large `bundleBase64`
// string is decoded and handed on in pieces instead of being held whole (docs/DAEMON.md#control-socket).
import { SentinelError } from '../core/errors.js';

/** Most bytes the fields other than the streamed one may hold together, as raw JSON text (a service event's evidence fits). */
export const MAX_FIELDS_BYTES = 256 * 1024;

type State = 'object' | 'key-or-end' | 'key-start' | 'key' | 'colon' | 'value' | 'raw' | 'stream' | 'comma-or-end' | 'done';

const WS = new Set([0x20, 0x09, 0x0d]);
const B64 = /^[A-Za-z0-9+/]*$/;

function usage(message: string): SentinelError {
  return new SentinelError('usage', message, { where: 'request' });
}

// The bytes of a field name or value as they arrive: one growing byte array (a number[] costs 8 bytes or more
// per byte held, so 24 clients each near the field limit held about 100 MB instead of 6).
class Bytes {
  private buf = new Uint8Array(64);
  length = 0;

  push(c: number): void {
    if (this.length === this.buf.length) {
      const next = new Uint8Array(Math.min(this.buf.length * 2, MAX_FIELDS_BYTES + 1));
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = c;
  }

  text(): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset, this.length).toString('utf8');
  }

  /** Empty again, giving back what a long value grew to. */
  reset(): void {
    if (this.buf.length > 64) this.buf = new Uint8Array(64);
    this.length = 0;
  }
}

export interface ReadResult {
  /** Decoded bytes of the streamed field found in this chunk, in order. */
  streamed: Buffer[];
  /** Set once the line is complete: every field that was not streamed, and whether the streamed one was present. */
  complete: { fields: Record<string, unknown>; streamedField: boolean } | null;
}

// Why: the request line is untrusted and may be 64 MiB of base64; only the streamed field's decoded bytes leave
// this reader, everything else it keeps is bounded by MAX_FIELDS_BYTES.
export class RequestReader {
  private state: State = 'object';
  private readonly key = new Bytes();
  private currentKey = '';
  /** Raw JSON text of the value being read (any JSON value: parsed by JSON.parse once it ends). */
  private readonly raw = new Bytes();
  private depth = 0;
  private inString = false;
  private escaped = false;
  private escape: number[] | null = null;
  private b64 = '';
  private padded = 0;
  private keptBytes = 0;
  private readonly fields: Record<string, unknown> = {};
  private streamedSeen = false;

  constructor(private readonly streamedField: string) {}

  /** Bytes this reader holds: fields so far, the value being read, and a partial base64 quad (counted in the memory budget). */
  get held(): number {
    return this.keptBytes + this.key.length + this.raw.length + this.b64.length;
  }

  // Why: one chunk in; throws a coded error at the first byte that cannot belong to a valid request.
  feed(chunk: Buffer): ReadResult {
    const out: ReadResult = { streamed: [], complete: null };
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] ?? 0;
      if (c === 0x0a) {
        if (this.state !== 'done') throw usage(this.state === 'stream' || this.state === 'key' || this.inString ? 'request line ends inside a string' : 'request is not valid JSON (incomplete object)');
        out.complete = { fields: this.fields, streamedField: this.streamedSeen };
        return out;
      }
      switch (this.state) {
        case 'object':
          if (WS.has(c)) break;
          if (c !== 0x7b) throw usage('request must be a JSON object');
          this.state = 'key-or-end';
          break;
        case 'key-or-end':
        case 'key-start':
          if (WS.has(c)) break;
          if (c === 0x7d && this.state === 'key-or-end') this.state = 'done';
          else if (c === 0x22) {
            this.state = 'key';
            this.key.reset();
            this.escaped = false;
          } else throw usage('request is not valid JSON (expected a field name)');
          break;
        case 'key':
          if (c === 0x22 && !this.escaped) {
            this.currentKey = this.parse(this.key, 'a field name') as string;
            this.key.reset();
            if (Object.hasOwn(this.fields, this.currentKey) || (this.currentKey === this.streamedField && this.streamedSeen)) throw usage(`bad request field(s): ${this.currentKey} (given twice)`);
            this.state = 'colon';
          } else {
            this.escaped = !this.escaped && c === 0x5c;
            this.keep(this.key, c);
          }
          break;
        case 'colon':
          if (WS.has(c)) break;
          if (c !== 0x3a) throw usage('request is not valid JSON (expected :)');
          this.state = 'value';
          break;
        case 'value':
          if (WS.has(c)) break;
          if (c === 0x22 && this.currentKey === this.streamedField) {
            this.streamedSeen = true;
            this.state = 'stream';
            break;
          }
          this.state = 'raw';
          this.raw.reset();
          this.depth = 0;
          this.inString = false;
          this.escaped = false;
          i--; // the first byte of the value is read as part of it
          break;
        case 'raw':
          if (!this.inString && this.depth === 0 && (c === 0x2c || c === 0x7d)) {
            this.fields[this.currentKey] = this.parse(this.raw, `the value of ${this.currentKey}`);
            this.raw.reset();
            this.state = c === 0x2c ? 'key-start' : 'done';
            break;
          }
          this.scanRaw(c);
          this.keep(this.raw, c);
          break;
        case 'stream':
          i = this.streamFrom(chunk, i, out);
          break;
        case 'comma-or-end':
          if (WS.has(c)) break;
          if (c === 0x2c) this.state = 'key-start';
          else if (c === 0x7d) this.state = 'done';
          else throw usage('request is not valid JSON (expected , or })');
          break;
        case 'done':
          if (!WS.has(c)) throw usage('request is not valid JSON (text after the object)');
          break;
      }
    }
    return out;
  }

  // Strings, escapes and nesting of a raw value, so a ',' or '}' inside it does not end it.
  private scanRaw(c: number): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (c === 0x5c) this.escaped = true;
      else if (c === 0x22) this.inString = false;
      return;
    }
    if (c === 0x22) this.inString = true;
    else if (c === 0x7b || c === 0x5b) this.depth++;
    else if (c === 0x7d || c === 0x5d) {
      this.depth--;
      if (this.depth < 0) throw usage('request is not valid JSON (unbalanced brackets)');
    }
  }

  private keep(into: Bytes, c: number): void {
    if (this.held >= MAX_FIELDS_BYTES) throw new SentinelError('too-large', `the fields other than ${this.streamedField} are longer than ${String(MAX_FIELDS_BYTES)} bytes`, { where: 'request' });
    into.push(c);
  }

  private parse(bytes: Bytes, what: string): unknown {
    const text = bytes.text();
    try {
      const value: unknown = JSON.parse(what === 'a field name' ? `"${text}"` : text);
      this.keptBytes += bytes.length;
      return value;
    } catch {
      throw usage(`request is not valid JSON (${what})`);
    }
  }

  // The streamed string: plain base64 runs are taken whole up to the next quote, backslash or newline.
  private streamFrom(chunk: Buffer, i: number, out: ReadResult): number {
    const c = chunk[i] ?? 0;
    if (this.escape !== null) {
      this.escapeByte(c, out);
      return i;
    }
    if (c === 0x5c) {
      this.escape = [];
      return i;
    }
    if (c === 0x22) {
      this.endBase64(out);
      this.state = 'comma-or-end';
      return i;
    }
    const stops = [chunk.indexOf(0x22, i), chunk.indexOf(0x5c, i), chunk.indexOf(0x0a, i)].filter((x) => x >= 0);
    const stop = stops.length === 0 ? chunk.length : Math.min(...stops);
    this.addBase64(chunk.toString('latin1', i, stop), out);
    return stop - 1;
  }

  private badBase64(): SentinelError {
    return usage(`bad request field(s): ${this.streamedField} (base64 text)`);
  }

  // Inside the streamed base64 value only `\/` and `\u00XX` of a base64 character can stand for a character.
  private escapeByte(c: number, out: ReadResult): void {
    const esc = this.escape ?? [];
    esc.push(c);
    if (esc.length === 1 && c === 0x2f) {
      this.escape = null;
      this.addBase64('/', out);
      return;
    }
    if (esc[0] !== 0x75) throw this.badBase64();
    if (esc.length < 5) return;
    this.escape = null;
    const hex = Buffer.from(esc.slice(1)).toString('latin1');
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) throw this.badBase64();
    this.addBase64(String.fromCharCode(parseInt(hex, 16)), out);
  }

  // Whole quads are decoded at once; '=' padding may only end the value (at most two).
  private addBase64(text: string, out: ReadResult): void {
    if (this.padded > 0) {
      if (!/^=*$/.test(text) || this.padded + text.length > 2) throw this.badBase64();
      this.padded += text.length;
      this.b64 += text;
      return;
    }
    const eq = text.indexOf('=');
    if (!B64.test(eq < 0 ? text : text.slice(0, eq))) throw this.badBase64();
    if (eq >= 0) {
      const pad = text.slice(eq);
      if (!/^=+$/.test(pad) || pad.length > 2) throw this.badBase64();
      this.padded = pad.length;
    }
    this.b64 += text;
    if (this.padded === 0) {
      const whole = this.b64.length - (this.b64.length % 4);
      if (whole > 0) {
        out.streamed.push(Buffer.from(this.b64.slice(0, whole), 'base64'));
        this.b64 = this.b64.slice(whole);
      }
    }
  }

  private endBase64(out: ReadResult): void {
    const rest = this.b64;
    this.b64 = '';
    if (rest.length === 0) return;
    if (this.padded > 0 ? rest.length % 4 !== 0 : rest.length % 4 === 1) throw this.badBase64();
    out.streamed.push(Buffer.from(rest, 'base64'));
  }
}
