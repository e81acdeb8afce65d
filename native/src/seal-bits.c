// The immutable and append bits from statx(2): one syscall and no open per path, about three times
// cheaper than the flags ioctl; what verify's sealed check reads (native/README.md#api).
#include "sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

int sn_seal_bits_of(const struct statx *sx) {
  if ((sx->stx_attributes_mask & SN_SEAL_BITS) != SN_SEAL_BITS) return -ENODATA;
  return (int)(sx->stx_attributes & SN_SEAL_BITS);
}

// statx reports the bits with the same values as FS_IMMUTABLE_FL/FS_APPEND_FL. Where the
// filesystem does not report them (attributes_mask), falls back to FS_IOC_GETFLAGS. The bits or -errno.
static int read_seal_bits(const char *path, const char **syscall) {
  struct statx sx;
  if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) != 0) {
    *syscall = "statx";
    return -errno;
  }
  if (S_ISLNK(sx.stx_mode)) { *syscall = "statx"; return -ELOOP; }
  if (!S_ISREG(sx.stx_mode) && !S_ISDIR(sx.stx_mode)) { *syscall = "statx"; return -EOPNOTSUPP; }
  int bits = sn_seal_bits_of(&sx);
  if (bits != -ENODATA) return bits;
  int flags = 0;
  int r = sn_read_flags(path, &flags, syscall);
  return r < 0 ? r : (flags & SN_SEAL_BITS);
}

static int read_seal_bits_value(const char *path, uint32_t *out, const char **syscall) {
  int r = read_seal_bits(path, syscall);
  if (r < 0) return r;
  *out = (uint32_t)r;
  return 0;
}

// getSealBitsMany(paths): (number | string)[] — FS_IMMUTABLE_FL|FS_APPEND_FL of each path, or the
// errno name; the cheap form of getFlagsMany for verify, which only asks "is it sealed?".
static napi_value get_seal_bits_many(napi_env env, napi_callback_info info) {
  return sn_map_paths(env, info, "getSealBitsMany(paths: string[])", read_seal_bits_value);
}

napi_status sn_register_seal_bits(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("getSealBitsMany", get_seal_bits_many) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
