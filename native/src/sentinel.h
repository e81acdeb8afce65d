// What the addon's files share: Node-style system errors, argument readers, little-endian record
// writers, thread-pool jobs whose promise always settles, and one registration function per
// concern (native/README.md#files).
#ifndef SENTINEL_NATIVE_H
#define SENTINEL_NATIVE_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

#define PATH_BUF 4096
// Most libuv works one job may queue (one per pool thread it uses); the caller sizes below this.
#define SN_MAX_THREADS 16
// FS_IMMUTABLE_FL | FS_APPEND_FL: the bits `vault verify` reads as "sealed".
#define SN_SEAL_BITS (0x10 | 0x20)

// ---- errors (common.c) ----
// The errno name Node uses in `err.code` ('EPERM', 'ENOTTY', ...).
const char *sn_errno_name(int e);
// An Error shaped like Node's system errors: code, errno (negative), syscall, path.
napi_value sn_sys_error(napi_env env, int e, const char *syscall, const char *path);
void sn_throw_sys(napi_env env, int e, const char *syscall, const char *path);
// A plain Error with a message, for a cancelled work.
napi_value sn_error(napi_env env, const char *message);

// ---- arguments (common.c) ----
// Reads up to `n` arguments into argv (missing ones are undefined) and argv[0] as a path of at
// most PATH_BUF bytes into `path`. 0 with a TypeError thrown.
int sn_path_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, char *path, const char *what);
// Reads a JS string into buf; throws a TypeError and returns 0 when it is not one (or too long, or holds NUL).
int sn_get_string(napi_env env, napi_value v, char *buf, size_t size, const char *what);
// An integer number 0..2^31-1 (an open fd) into *fd; throws a TypeError "<what> must be an open file
// descriptor" and returns 0 otherwise (never wrapped or truncated to another descriptor).
int sn_get_fd(napi_env env, napi_value v, int *fd, const char *what);
// An integer number 0..2^32-1 into *out. Not a number: TypeError ERR_INVALID_ARG_TYPE "<what> must be a
// number"; out of range, a fraction, NaN or an infinity: RangeError ERR_OUT_OF_RANGE "<what> must be an
// integer from 0 to 2^32-1" (never wrapped to its low 32 bits). Returns 0 when it threw.
int sn_get_uint(napi_env env, napi_value v, double max, const char *range, uint64_t *out, const char *what);
int sn_get_u32(napi_env env, napi_value v, uint32_t *out, const char *what);
// A typed array of type `want` and length n; stores its data pointer. 0 when it is not.
int sn_typed_array(napi_env env, napi_value v, napi_typedarray_type want, size_t n, void **data);
// A Uint8Array of any length: its bytes (never NULL, "" when empty) and length. 0 when it is not
// one (nothing thrown: the caller names its own usage).
int sn_uint8_array(napi_env env, napi_value v, const unsigned char **data, size_t *len);
// Splits a NUL-separated string argument into a fresh copy and its count of entries ("" is none).
// Returns 1 with *blob (malloc'd) and *count, 0 with a TypeError thrown or ENOMEM thrown.
int sn_get_nul_list(napi_env env, napi_value v, char **blob, uint32_t *count, const char *what);
// Points ptrs[0..count) at the entries of a blob from sn_get_nul_list.
void sn_index_nul_list(char *blob, uint32_t count, char **ptrs);

// One reader per path for sn_map_paths: the value in *out and 0, or -errno with *syscall set.
typedef int (*sn_path_reader)(const char *path, uint32_t *out, const char **syscall);
// Maps `reader` over a string array argument: the value, or the errno name where reading failed,
// so a verify of 10,000 entries costs one call and still reports every failure.
napi_value sn_map_paths(napi_env env, napi_callback_info info, const char *usage, sn_path_reader reader);

// ---- records (common.c) ----
void sn_put_i32(unsigned char *p, int32_t v);
void sn_put_u32(unsigned char *p, uint32_t v);
void sn_put_f64(unsigned char *p, double v);
// Writes all of buf at off (pwrite, retrying EINTR and short writes). 0 or -errno.
int sn_write_all_at(int fd, const unsigned char *buf, size_t len, int64_t off);

// ---- thread-pool jobs (jobs.c) ----
// What every job shares: its promise and its works (one per pool thread it uses).
typedef struct {
  napi_deferred deferred;
  napi_async_work works[SN_MAX_THREADS];
  uint32_t nworks;     // works queued
  uint32_t pending;    // works not yet completed
  uint32_t cancelled;  // works that completed with a status other than napi_ok
} sn_job;
// Creates the job's promise and queues up to `count` works (<= SN_MAX_THREADS) of execute/complete
// on `data`. Every napi_create_async_work/napi_queue_async_work is checked: a work that fails is
// deleted and the job runs on the works already queued (they claim entries from a shared counter,
// so fewer threads finish the same job); when none was queued the promise is rejected at once
// (code EAGAIN, syscall napi_queue_async_work) and free_data(data) called. Returns the promise, or
// NULL with an exception (data freed) when the promise itself could not be made.
napi_value sn_job_start(napi_env env, sn_job *job, const char *name, napi_async_execute_callback execute,
                        napi_async_complete_callback complete, void *data, uint32_t count, void (*free_data)(napi_env env, void *data));
// For a complete callback: counts this work's end. 0 while other works run; else every work is
// deleted and the answer is 1, or -1 when every work was cancelled (the caller rejects).
int sn_job_end(napi_env env, sn_job *job, napi_status status);
// Resolves the job's promise with a Buffer copy of `len` bytes (rejects it if that copy fails).
void sn_job_resolve_buffer(napi_env env, sn_job *job, const void *bytes, size_t len);
// For the complete callback of a job whose promise resolves to undefined, of one work or several: ends
// this work (sn_job_end). While other works of the job still run it settles nothing and returns 0: the
// caller must then leave the job's data alone (they use it). After the last work it rejects with the
// message `cancelled` when every work was cancelled, with a system error (err, syscall, path) when
// err != 0, resolves otherwise, and returns 1: the caller frees the job's data. err, syscall and path are
// read only then, so with several works they are the job's result as its works recorded it in the shared
// data (the caller's execute must record them race-free, e.g. the first failure kept under an atomic).
int sn_job_settle_void(napi_env env, sn_job *job, napi_status status, const char *cancelled, int err, const char *syscall, const char *path);

// ---- exports ----
// Defines `count` functions on exports; what every register_* calls.
napi_status sn_export(napi_env env, napi_value exports, const napi_property_descriptor *props, size_t count);
#define SN_FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL }

// One per concern; module.c calls each at load. A new file adds its register_* here and there.
napi_status sn_register_jobs(napi_env env, napi_value exports);       // jobs.c: test hook for the async-work failure path
napi_status sn_register_flags(napi_env env, napi_value exports);      // flags.c: FS_IOC_GETFLAGS/SETFLAGS, one, many or on an fd
napi_status sn_register_seal_bits(napi_env env, napi_value exports);  // seal-bits.c: +i/+a from statx
napi_status sn_register_inspect(napi_env env, napi_value exports);    // inspect-tree.c: verify's pass through directory fds (+ inspect-list.c)
napi_status sn_register_inspect_gate(napi_env env, napi_value exports);  // inspect-gate.c: test hook holding the pass at one directory
napi_status sn_register_stage(napi_env env, napi_value exports);      // stage.c: deploy's payload writer (write + SHA-256)
napi_status sn_register_cold_copy(napi_env env, napi_value exports);  // cold-copy.c: the kept bundle, out of the page cache
napi_status sn_register_notify(napi_env env, napi_value exports);     // notify.c: sd_notify datagram
napi_status sn_register_notify_listen(napi_env env, napi_value exports);  // notify-listen.c: the receiving end, for command targets
napi_status sn_register_bpf(napi_env env, napi_value exports);        // bpf-engine.c: the eBPF engine (BpfEngine), or why it is not built in
napi_status sn_register_dir_fd(napi_env env, napi_value exports);     // dir-fd.c: openat/mkdirat/renameat/... for the vault
napi_status sn_register_lock(napi_env env, napi_value exports);       // lock.c: flock(2) of an open fd, the vault's lock
napi_status sn_register_sync_fs(napi_env env, napi_value exports);    // sync-fs.c: syncfs(2) of a path's filesystem, for deploy
napi_status sn_register_xattr(napi_env env, napi_value exports);      // xattr.c: extended attributes verify does not tolerate
napi_status sn_register_remove_tree(napi_env env, napi_value exports);  // remove-tree.c: deleting a sealed tree through fds
napi_status sn_register_systemd_bus(napi_env env, napi_value exports);  // systemd-bus.c: restart jobs over D-Bus (sd-bus), or why not built in
napi_status sn_register_systemd_unit(napi_env env, napi_value exports);  // systemd-unit.c: a unit's state over D-Bus, waiting for its signals
napi_status sn_register_manifest_scan(napi_env env, napi_value exports);  // manifest-scan.c: the entries of a common manifest, in one pass over its bytes
napi_status sn_register_verify_tree(napi_env env, napi_value exports);  // verify-tree.c: verify's intact answer from the manifest's bytes and the tree pass's records
napi_status sn_register_pidfd_signal(napi_env env, napi_value exports);  // pidfd-signal.c: a signal to a process named by PID and start time, through a pidfd
napi_status sn_register_digest(napi_env env, napi_value exports);  // digest.c: SHA-256/SHA-512 of a buffer, and SHA-512 on a pool thread (vault status's release id)
napi_status sn_register_ed25519(napi_env env, napi_value exports);  // ed25519.c: Ed25519 verification through OpenSSL's EVP, here or on a pool thread

// ---- directory fds (dir-fd.c) ----
// Opens `path` below dirfd without following any symlink or leaving dirfd (openat2 RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS, else O_NOFOLLOW per component). The fd, or -errno.
int sn_open_beneath(int dirfd, const char *path, int flags, unsigned int mode);

// ---- inode flags shared by flags.c, seal-bits.c and the tree pass (flags.c) ----
// Opens a regular file or directory for the flag ioctls without following a symlink (ELOOP) or
// opening a device, FIFO or socket (EOPNOTSUPP). The fd, or -errno with *syscall set.
int sn_open_for_flags(const char *path, const char **syscall);
// FS_IOC_GETFLAGS of an open fd. 0 or -errno.
int sn_fd_flags(int fd, int *flags);
// Sets (on) or clears `flag` on an open fd, with FS_IOC_SETFLAGS only when it changes: 1 changed,
// 0 already so, -errno.
int sn_fd_change_flag(int fd, int flag, int on);
// FS_IOC_GETFLAGS of a path (opened as above). 0 or -errno with *syscall set.
int sn_read_flags(const char *path, int *flags, const char **syscall);
// The seal bits a statx reported, or -ENODATA where the filesystem does not report them (seal-bits.c).
struct statx;
int sn_seal_bits_of(const struct statx *sx);

// ---- extended attributes (xattr.c) ----
// How many extended attributes fd (>= 0) or path (not following a symlink) carries besides the
// tolerated LSM labels: 0 (one syscall, no allocation when there are none), or -errno.
int sn_untolerated_xattrs(int fd, const char *path);

// ---- verify's tree pass (inspect-gate.c) ----
// Test hook: waits there when `rel` is the directory a test armed with _inspectGate (else returns at once).
void sn_inspect_gate(const char *rel);
// The test hooks' wait (_inspectGate, _removeGate): creates `file`.reached, then waits until `file`
// exists, at most 10 s, so a test that never opens the gate still ends.
void sn_gate_wait(const char *file);

#endif
