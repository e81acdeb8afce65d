// The streaming request reader against JSON.parse: the same fields and the same decoded bundle bytes however the
// line is cut into chunks; bad lines refused with a code at the first byte that cannot belong to a request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isSentinelError } from '../../src/core/errors.js';
import { MAX_FIELDS_BYTES, RequestReader } from '../../src/daemon/request-reader.js';

function readAll(line: string | Buffer, cuts: number[]): { fields: Record<string, unknown>; streamed: Buffer; present: boolean } {
  const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  const reader = new RequestReader('bundleBase64');
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of [...points, bytes.length]) {
    parts.push(bytes.subarray(at, p));
    at = p;
  }
  const streamed: Buffer[] = [];
  for (const part of parts) {
    const r = reader.feed(part);
    streamed.push(...r.streamed);
    if (r.complete !== null) return { fields: r.complete.fields, streamed: Buffer.concat(streamed), present: r.complete.streamedField };
  }
  throw new Error('no complete line');
}

test('request reader: any flat request, cut anywhere, reads as JSON.parse does; the bundle comes out decoded', () => {
  fc.assert(
    fc.property(
      fc.record({ op: fc.string({ maxLength: 20 }), id: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }), bundlePath: fc.option(fc.string({ maxLength: 60 }), { nil: undefined }) }),
      fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.boolean(),
      (fields, bundle, cuts, escapeSlashes) => {
        const request: Record<string, unknown> = { ...fields };
        for (const k of Object.keys(request)) if (request[k] === undefined) delete request[k];
        let line = JSON.stringify(bundle === undefined ? request : { ...request, bundleBase64: Buffer.from(bundle).toString('base64') });
        if (escapeSlashes) line = line.replaceAll('/', '\\/');
        const got = readAll(`${line}\n`, cuts);
        const expected = JSON.parse(line) as Record<string, unknown>;
        delete expected.bundleBase64;
        assert.deepEqual(got.fields, expected);
        assert.equal(got.present, bundle !== undefined);
        assert.deepEqual(got.streamed, Buffer.from(bundle ?? []));
      },
    ),
    { numRuns: 300 },
  );
});

test('request reader: whitespace, unpadded base64 and \\u escapes of base64 characters are read like JSON.parse', () => {
  const got = readAll(' { "op" : "deploy" , "bundleBase64" : "QUJ\\u0044" }\n', []);
  assert.deepEqual(got.fields, { op: 'deploy' });
  assert.equal(got.streamed.toString('latin1'), 'ABC');
  assert.equal(readAll('{"op":"deploy","bundleBase64":"QUI"}\n', [5, 40]).streamed.toString(), 'AB');
  assert.deepEqual(readAll('{}\n', []).fields, {});
  // Values other than strings are read whole (the validator names them); ',' and '}' inside them do not end them.
  const mixed = '{"op":"service-event","n":1.5e3,"evidence":["a, }","b\\"]\u005d"],"x":{"y":[true,null]}}';
  assert.deepEqual(readAll(`${mixed}\n`, [3, 30, 47]).fields, JSON.parse(mixed));
  assert.deepEqual(readAll('{"bundleBase64":7}\n', []).fields, { bundleBase64: 7 });
});

test('request reader: refused with a code at the first bad byte, never buffering past a field limit', () => {
  const bad = (line: string | Buffer, code: string): void => {
    assert.throws(() => readAll(line, []), (e) => isSentinelError(e) && e.code === code, `${String(line).slice(0, 60)} → ${code}`);
  };
  bad('not json at all\n', 'usage');
  bad('[1,2]\n', 'usage');
  bad('{"op":[1,2}\n', 'usage');
  bad('{"op":tru}\n', 'usage');
  bad('{"op":"status"\n', 'usage');
  bad('{"op":"status"}x\n', 'usage');
  bad('{"op":"a","op":"b"}\n', 'usage');
  bad('{"op":"deploy","bundleBase64":"QU*J"}\n', 'usage');
  bad('{"op":"deploy","bundleBase64":"QUJD=A"}\n', 'usage');
  bad('{"op":"deploy","bundleBase64":"QUJDE"}\n', 'usage');
  bad('{"op":"deploy","bundleBase64":"QU\\nJD"}\n', 'usage');
  bad('{"op":"bad \u0001 control"}\n', 'usage');
  bad(`{"op":"${'x'.repeat(MAX_FIELDS_BYTES + 1)}"}\n`, 'too-large');
  bad(`{"a":"${'x'.repeat(MAX_FIELDS_BYTES / 2)}","b":"${'x'.repeat(MAX_FIELDS_BYTES / 2)}"}\n`, 'too-large');
  // A bare stream of junk is refused at its first byte, not after buffering it.
  const reader = new RequestReader('bundleBase64');
  assert.throws(() => reader.feed(Buffer.alloc(1 << 20, 0x61)), (e) => isSentinelError(e, 'usage'));
});

test('request reader: a large base64 value is handed on in pieces; what it holds stays a few bytes', () => {
  const reader = new RequestReader('bundleBase64');
  const payload = Buffer.alloc(3 * 1024 * 1024, 7);
  const b64 = payload.toString('base64');
  reader.feed(Buffer.from('{"op":"deploy","bundleBase64":"'));
  let total = 0;
  let maxHeld = 0;
  for (let at = 0; at < b64.length; at += 65_537) {
    const r = reader.feed(Buffer.from(b64.slice(at, at + 65_537), 'latin1'));
    total += r.streamed.reduce((n, b) => n + b.length, 0);
    maxHeld = Math.max(maxHeld, reader.held);
  }
  const end = reader.feed(Buffer.from('"}\n'));
  total += end.streamed.reduce((n, b) => n + b.length, 0);
  assert.ok(end.complete !== null);
  assert.equal(total, payload.length);
  assert.ok(maxHeld < 64, `held ${String(maxHeld)} bytes`);
});
