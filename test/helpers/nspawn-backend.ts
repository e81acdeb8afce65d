// The boot the backend-unit tests share (backend-e2e, restart-race): the units as
// `sentinel install-units --sample-backend` installs them (backend-e2e-setup.service runs
// backend-setup.sh inside) next to the sentinel unit, and a reporter unit of the test's own that
// writes /out/result.json and powers the container off.
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../src/adapters/package-root.js';
import { bootContainer, reporterResult } from './nspawn.js';
import { e2eBinds, writeNotifyDropIn, type E2eDirs } from './nspawn-inputs.js';

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
