// How `systemctl show` output is read: a time span is printed as people read it, not in µs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timespanUsec } from '../../src/adapters/systemctl.js';

test('WatchdogUSec= as systemctl show prints it is read in µs (a unit\'s watchdog is seen)', () => {
  assert.equal(timespanUsec('3s'), 3_000_000);
  assert.equal(timespanUsec('20s'), 20_000_000);
  assert.equal(timespanUsec('1min 30s'), 90_000_000);
  assert.equal(timespanUsec('500ms'), 500_000);
  assert.equal(timespanUsec('1h 2min 3s 4ms 5us'), 3_723_004_005);
  assert.equal(timespanUsec('2500000'), 2_500_000, 'a bare number is µs already');
  assert.equal(timespanUsec('0'), 0, 'no watchdog');
  assert.equal(timespanUsec('infinity'), 0, 'never fires: no watchdog');
  assert.equal(timespanUsec(''), 0);
  assert.equal(timespanUsec('3 parsecs'), 0, 'not a time span');
});
