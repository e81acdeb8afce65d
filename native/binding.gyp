{
  "targets": [
    {
      "target_name": "sentinel_native",
      "sources": [
        "src/module.c",
        "src/common.c",
        "src/flags.c",
        "src/seal-bits.c",
        "src/inspect.c",
        "src/stage.c",
        "src/cold-copy.c",
        "src/notify.c"
      ],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
