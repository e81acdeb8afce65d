{
  "targets": [
    {
      "target_name": "sentinel_native",
      "sources": [
        "src/module.c",
        "src/common.c",
        "src/jobs.c",
        "src/flags.c",
        "src/seal-bits.c",
        "src/inspect-gate.c",
        "src/inspect-list.c",
        "src/inspect-tree.c",
        "src/stage.c",
        "src/cold-copy.c",
        "src/notify.c",
        "src/notify-listen.c",
        "src/js-poll.c",
        "src/bpf-engine.c",
        "src/bpf-load.c",
        "src/bpf-maps.c",
        "src/bpf-support.c",
        "src/dir-fd.c",
        "src/lock.c",
        "src/sync-fs.c",
        "src/xattr.c",
        "src/remove-tree.c",
        "src/remove-walk.c",
        "src/systemd-bus.c",
        "src/systemd-conn.c",
        "src/systemd-props.c",
        "src/systemd-unit.c",
        "src/systemd-lib.c",
        "src/manifest-scan.c",
        "src/verify-tree.c",
        "src/pidfd-signal.c",
        "src/digest.c",
        "src/ed25519.c"
      ],
      "variables": {
        "has_libbpf%": "<!(test -r /usr/include/bpf/libbpf.h && echo 1 || echo 0)",
        "has_libsystemd%": "<!(test -r /usr/include/systemd/sd-bus.h && echo 1 || echo 0)"
      },
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "conditions": [
        ["has_libbpf==1", {
          "defines": ["SENTINEL_HAVE_LIBBPF"],
          "libraries": ["-lbpf"]
        }],
        ["has_libsystemd==1", {
          "defines": ["SENTINEL_HAVE_LIBSYSTEMD"],
          "libraries": ["-ldl", "-lpthread"]
        }]
      ]
    }
  ]
}
