/* Part of sentinel.bpf.c (one object, one compilation unit): who changed inode flags on the vault's filesystem. */
#pragma once

/* Inode flags (include/linux/fs.h S_*), stable since 2.6. */
#define SENTINEL_S_APPEND 4
#define SENTINEL_S_IMMUTABLE 8

/* FS_IOC_SETFLAGS (64- and 32-bit) and FS_IOC_FSSETXATTR. */
#define SENTINEL_IOC_SETFLAGS 0x40086602u
#define SENTINEL_IOC32_SETFLAGS 0x40046602u
#define SENTINEL_IOC_FSSETXATTR 0x401c5820u
/* The generic layout of syscalls/sys_enter_* and sys_exit_* (see the events' format files). */
struct sentinel_ioctl_enter {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __u64 fd;
  __u64 cmd;
  __u64 arg;
};

struct sentinel_ioctl_exit {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __s64 ret;
};

SEC("tracepoint/syscalls/sys_enter_ioctl")
int sentinel_ioctl_enter(struct sentinel_ioctl_enter *ctx) {
  __u32 cmd = (__u32)ctx->cmd;
  if (cmd != SENTINEL_IOC_SETFLAGS && cmd != SENTINEL_IOC32_SETFLAGS && cmd != SENTINEL_IOC_FSSETXATTR) return 0;
  __u64 id = current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  if (tgid == ro.self_tgid) return 0;
  __u32 zero = 0;
  struct sentinel_config *cfg = bpf_map_lookup_elem(&sn_config, &zero);
  if (!cfg || !cfg->flags_on) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  __u64 fd = ctx->fd;
  if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds)) return 0;
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *f = 0;
  if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) != 0 || !f) return 0;
  struct inode *inode = BPF_CORE_READ(f, f_inode);
  if (!inode) return 0;
  __u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
  if (dev != cfg->flag_dev) return 0;
  struct pending_ioctl p = {};
  p.inode = (__u64)inode;
  p.ino = BPF_CORE_READ(inode, i_ino);
  p.dev = dev;
  p.cmd = cmd;
  p.before = BPF_CORE_READ(inode, i_flags) & (SENTINEL_S_APPEND | SENTINEL_S_IMMUTABLE);
  bpf_map_update_elem(&sn_pending, &tid, &p, BPF_ANY);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int sentinel_ioctl_exit(struct sentinel_ioctl_exit *ctx) {
  __u64 id = current_pid_tgid();
  __u32 tgid = id >> 32, tid = (__u32)id;
  struct pending_ioctl *p = bpf_map_lookup_elem(&sn_pending, &tid);
  if (!p) return 0;
  struct inode *inode = (struct inode *)p->inode;
  struct sentinel_event *e = reserve(SENTINEL_EV_FLAGS, tgid, bpf_ktime_get_ns());
  if (e) {
    e->flags.tid = tid;
    e->flags.uid = (__u32)bpf_get_current_uid_gid();
    e->flags.cmd = p->cmd;
    e->flags.ret = ctx->ret;
    e->flags.ino = p->ino;
    e->flags.dev = p->dev;
    e->flags.before = p->before;
    e->flags.after = BPF_CORE_READ(inode, i_flags) & (SENTINEL_S_APPEND | SENTINEL_S_IMMUTABLE);
    bpf_ringbuf_submit(e, 0);
    count(SENTINEL_STAT_FLAGS);
  }
  bpf_map_delete_elem(&sn_pending, &tid);
  return 0;
}
