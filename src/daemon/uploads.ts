// Bundles sent inline (`bundleBase64`) are streamed into files under `stateDir/incoming/`, removed on every path
// out — deployed, refused, the client gone, the disk full — and any left by a killed daemon are removed at start.
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ioError } from '../core/errno.js';

/** A bundle received whole: the file the deploy reads, and its size. */
export interface Upload {
  path: string;
  bytes: number;
}

// Why: one upload in progress; every failure to store it is `io` naming the directory (a full disk is not the
// client's fault, and the client's socket is not where it happened).
export class UploadFile {
  private fh: FileHandle | null;
  private gone = false;
  bytes = 0;

  constructor(
    readonly path: string,
    private readonly dir: string,
    fh: FileHandle,
  ) {
    this.fh = fh;
  }

  async write(chunk: Buffer): Promise<void> {
    const fh = this.fh;
    if (fh === null) return;
    try {
      let at = 0;
      while (at < chunk.length) at += (await fh.write(chunk, at, chunk.length - at, null)).bytesWritten;
    } catch (e) {
      throw ioError(e, 'cannot store the uploaded bundle', this.dir);
    }
    this.bytes += chunk.length;
  }

  // Why: the file is complete; closed before the deploy opens it.
  async finish(): Promise<Upload> {
    const fh = this.fh;
    this.fh = null;
    try {
      await fh?.close();
    } catch (e) {
      throw ioError(e, 'cannot store the uploaded bundle', this.dir);
    }
    return { path: this.path, bytes: this.bytes };
  }

  // Why: idempotent, never throws: called on every path out, whatever happened before.
  async discard(): Promise<void> {
    if (this.gone) return;
    this.gone = true;
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
    await rm(this.path, { force: true }).catch(() => undefined);
  }
}

// Why: the upload directory belongs to the daemon alone: nothing in it outlives the request that made it.
export class Uploads {
  constructor(readonly dir: string) {}

  /** Creates the directory and removes what a killed daemon left there; returns how many files went. */
  async prepare(): Promise<number> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const names = await readdir(this.dir);
      for (const n of names) await rm(join(this.dir, n), { recursive: true, force: true });
      return names.length;
    } catch (e) {
      throw ioError(e, 'cannot prepare the upload directory', this.dir);
    }
  }

  async create(): Promise<UploadFile> {
    const path = join(this.dir, `${randomBytes(12).toString('hex')}.bundle`);
    try {
      return new UploadFile(path, this.dir, await open(path, 'wx', 0o600));
    } catch (e) {
      throw ioError(e, 'cannot store the uploaded bundle', this.dir);
    }
  }

  /** Removes a finished upload once its deploy is done (or refused). */
  async remove(upload: Upload): Promise<void> {
    await rm(upload.path, { force: true }).catch(() => undefined);
  }
}
