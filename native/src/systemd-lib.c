// Opens libsystemd.so.0 once and resolves the sd-bus functions systemd-bus.c calls (systemd-lib.h).
#include "sentinel.h"

#ifdef SENTINEL_HAVE_LIBSYSTEMD
#include "systemd-lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

sn_sd_funcs sd;
static pthread_once_t sd_once = PTHREAD_ONCE_INIT;
static char sd_problem[256];  // "" once loaded; else why not

static void sd_load(void) {
  void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    const char *e = dlerror();
    snprintf(sd_problem, sizeof sd_problem, "%s", e != NULL ? e : "dlopen(libsystemd.so.0) failed");
    return;
  }
  // A missing function leaves `sd` partly filled, but sd_problem set: nothing reads `sd` then.
#define SD_RESOLVE(f)                                                                          \
  if ((*(void **)&sd.f = dlsym(h, #f)) == NULL) {                                              \
    snprintf(sd_problem, sizeof sd_problem, "libsystemd.so.0 lacks %s (older than systemd 240)", #f); \
    dlclose(h);                                                                                \
    return;                                                                                    \
  }
  SD_FUNCS(SD_RESOLVE)
  // the handle stays open for the process's life: `sd` holds its functions
}

const char *sn_sd_loaded(void) {
  pthread_once(&sd_once, sd_load);
  return sd_problem[0] == '\0' ? NULL : sd_problem;
}
#endif
