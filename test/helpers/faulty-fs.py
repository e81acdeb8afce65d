#!/usr/bin/python3
# A FUSE passthrough of BACKING mounted at MOUNT whose fsync/fdatasync fail with EIO while the file
# CONTROL exists: the kernel then reports a real writeback error to the process that flushes, as a
# failing disk would (there is no device-mapper on every test host). While the file WRITES holds a
# number N, a write of more than N bytes fails with ENOSPC and writes nothing, as on a nearly full
# disk where a short line still fits and a long one does not. Runs in the foreground; the test
# unmounts it and the process exits.
import errno
import os
import sys

from fusepy import FUSE, FuseOSError, Operations


class Faulty(Operations):
    def __init__(self, backing, control, writes):
        self.backing = backing
        self.control = control
        self.writes = writes

    def _write_limit(self):
        try:
            with open(self.writes) as f:
                return int(f.read().strip())
        except FileNotFoundError:
            return None

    def _p(self, path):
        return os.path.join(self.backing, path.lstrip('/'))

    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        return {k: getattr(st, k) for k in ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_atime', 'st_mtime', 'st_ctime', 'st_ino')}

    def readdir(self, path, fh):
        return ['.', '..'] + os.listdir(self._p(path))

    def access(self, path, mode):
        if not os.access(self._p(path), mode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def unlink(self, path):
        os.unlink(self._p(path))

    def rename(self, old, new):
        os.rename(self._p(old), self._p(new))

    def link(self, target, name):
        os.link(self._p(name), self._p(target))

    def utimens(self, path, times=None):
        os.utime(self._p(path), times)

    def statfs(self, path):
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    def open(self, path, flags):
        return os.open(self._p(path), flags)

    def create(self, path, mode, fi=None):
        return os.open(self._p(path), os.O_RDWR | os.O_CREAT, mode)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def write(self, path, data, offset, fh):
        limit = self._write_limit()
        if limit is not None and len(data) > limit:
            raise FuseOSError(errno.ENOSPC)
        return os.pwrite(fh, data, offset)

    def truncate(self, path, length, fh=None):
        if fh is None:
            os.truncate(self._p(path), length)
        else:
            os.ftruncate(fh, length)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        if os.path.exists(self.control):
            raise FuseOSError(errno.EIO)
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        return 0

    def release(self, path, fh):
        os.close(fh)
        return 0


if __name__ == '__main__':
    backing, mount, control, writes = sys.argv[1:5]
    # direct_io: every write reaches this process at once (no page cache of its own in between).
    FUSE(Faulty(backing, control, writes), mount, foreground=True, nothreads=True, allow_other=True, direct_io=True)
