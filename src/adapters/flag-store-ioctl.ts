// The flag store through the native addon's FS_IOC_GETFLAGS/SETFLAGS ioctls (and statx for the
// seal bits): no process per file. Chosen by flags.ts when the addon is built.
import { SentinelError } from '../core/errors.js';
import { codeForErrno } from '../core/errno.js';
import { actionOf, errnoMessage, flagError, FS_IMMUTABLE_FL } from './flag-store.js';
import type { FlagStore } from './flag-store.js';
import type { NativeAddon } from './native.js';

// From this many paths on, the ioctl store seals on the thread pool instead of inline.
const ASYNC_BATCH_MIN = 256;

// The store defaultFlagStore picks wherever the addon loads.
export class IoctlFlagStore implements FlagStore {
  readonly kind = 'ioctl' as const;
  constructor(readonly addon: NativeAddon) {}

  getFlags(path: string): Promise<number> {
    try {
      return Promise.resolve(this.addon.getFlags(path));
    } catch (e) {
      return Promise.reject(flagError(e, path, 'read inode flags'));
    }
  }

  setFlag(path: string, flag: number, on: boolean): Promise<void> {
    try {
      this.addon.setFlag(path, flag, on);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(flagError(e, path, actionOf(flag, on)));
    }
  }

  // Small batches (the live pointer, a release's top directories) run inline for the shortest
  // unsealed window; large ones go to the thread pool so the event loop keeps serving.
  async setFlagMany(paths: string[], flag: number, on: boolean): Promise<number> {
    try {
      if (paths.length < ASYNC_BATCH_MIN) this.addon.setFlagMany(paths, flag, on);
      else await this.addon.setFlagManyAsync(paths, flag, on);
      return paths.length;
    } catch (e) {
      throw flagError(e, paths[0] ?? '', actionOf(flag, on));
    }
  }

  getFlagsMany(paths: string[]): Promise<number[]> {
    return this.collect(paths, this.addon.getFlagsMany(paths));
  }

  async getImmutableMany(paths: string[]): Promise<boolean[]> {
    const bits = await this.collect(paths, this.addon.getSealBitsMany(paths));
    return bits.map((b) => (b & FS_IMMUTABLE_FL) !== 0);
  }

  private collect(paths: string[], raw: (number | string)[]): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      const path = paths[i] ?? '';
      if (typeof v === 'string') {
        return Promise.reject(new SentinelError(codeForErrno(v, 'inode-flags'), errnoMessage(v, 'read inode flags'), { where: path }));
      }
      out.push(v ?? 0);
    }
    return Promise.resolve(out);
  }
}
