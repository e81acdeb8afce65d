// The boot the backend-unit tests share (backend-e2e, restart-race, watchdog-timeout): the units as
// `sentinel install-units --sample-backend` installs them (backend-e2e-setup.service runs
// backend-setup.sh inside) next to the sentinel unit, and a reporter unit of the test's own that
// writes /out/result.json and powers the container off.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { bootContainer, reporterResult } from './nspawn.js';
import { e2eBinds, signE2eRelease, writeNotifyDropIn, type E2eDirs } from './nspawn-inputs.js';

export const BACKEND_BOOT_TIMEOUT_MS = 200_000;
const GUEST_ROOT = '/opt/omnimind-sentinel';
const fixtures = join(packageRoot(), 'test', 'fixtures', 'nspawn');

/** What a backend reporter writes to /out/result.json. */
export interface BackendReport<S> {
  ok: boolean;
  errors: string[];
  steps: S;
  journal?: string[];
  sentinelJournal?: string[];
}

// Writes the set-up script, its env and the sentinel unit's notify drop-in beside the releases
// already signed into `d`, boots with the fixture unit `reporter` pulled in (and `extraArgs`, such
// as more drop-ins; `wants`: more units pulled into the boot), and returns the reporter's result.
export async function bootBackendUnits<S>(d: E2eDirs, reporter: string, extraArgs: string[] = [], wants: string[] = []): Promise<BackendReport<S>> {
  await copyFile(join(fixtures, 'backend-setup.sh'), join(d.e2e, 'backend-setup.sh'));
  await writeFile(join(d.e2e, 'env'), `SENTINEL_ROOT=${GUEST_ROOT}\n`);
  // Without the native addon sd_notify goes through systemd-notify (another PID): only NotifyAccess=all accepts it.
  await writeNotifyDropIn(join(d.dir, 'sentinel-notify.conf'));
  const boot = await bootContainer({
    timeoutMs: BACKEND_BOOT_TIMEOUT_MS,
    args: [
      // The package at a fixed path outside /tmp (the units' PrivateTmp= would hide a checkout under
      // /tmp), so the units install-units renders inside point at it wherever the checkout is.
      ...e2eBinds(d, GUEST_ROOT),
      ...extraArgs,
      `--bind-ro=${join(d.dir, 'sentinel-notify.conf')}:/etc/systemd/system/omnimind-sentinel.service.d/e2e-notify.conf`,
      `--bind-ro=${join(fixtures, 'backend-e2e-setup.service')}:/etc/systemd/system/backend-e2e-setup.service`,
      `--bind-ro=${join(fixtures, reporter)}:/etc/systemd/system/${reporter}`,
    ],
    wants: [...wants, 'backend-e2e-setup.service', reporter],
  });
  return reporterResult<BackendReport<S>>(boot, d.out, 'result.json', BACKEND_BOOT_TIMEOUT_MS);
}

// The sentinel's config with the backend as its only target, and release 1 signed into `d` (the
// tests of one unit's recovery: restart-race, watchdog-timeout).
export async function signBackendOnly(d: E2eDirs): Promise<void> {
  const config = JSON.parse(await readFile(join(fixtures, 'backend-sentinel.json'), 'utf8')) as { targets: { name: string }[] };
  config.targets = config.targets.filter((x) => x.name === 'backend');
  await writeFile(join(d.etc, 'sentinel.json'), `${JSON.stringify(config, null, 2)}\n`);
  await writeFile(join(d.src, 'engine', 'phi.py'), 'phi = 1\n');
  signE2eRelease(d, 1);
}

/** What an assertion on a backend reporter's result prints: its errors, steps and both journals. */
export function backendReportContext<S>(result: BackendReport<S>): string {
  return `errors: ${result.errors.join('\n')}\nsteps: ${JSON.stringify(result.steps)}\njournal:\n${(result.journal ?? []).join('\n')}\nsentinel journal:\n${(result.sentinelJournal ?? []).join('\n')}`;
}
