// The JS-callback side of the addon's uv_poll readers (declared in js-poll.h).
#include "js-poll.h"

#include <stdbool.h>

void sn_js_poll_call(napi_env env, napi_ref callback, napi_async_context async, size_t argc, const napi_value *argv) {
  napi_value fn, recv, result;
  if (callback == NULL || napi_get_reference_value(env, callback, &fn) != napi_ok || fn == NULL ||
      napi_get_global(env, &recv) != napi_ok) {
    return;
  }
  napi_make_callback(env, async, recv, fn, argc, argv, &result);
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    // The callback threw: report it like any uncaught exception instead of swallowing it.
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

void sn_js_poll_release(napi_env env, napi_ref *callback, napi_async_context *async, uv_poll_t *poll, int handle_open,
                        uv_close_cb on_closed) {
  if (*callback != NULL) napi_delete_reference(env, *callback);
  *callback = NULL;
  if (*async != NULL) napi_async_destroy(env, *async);
  *async = NULL;
  if (handle_open && !uv_is_closing((uv_handle_t *)poll)) uv_close((uv_handle_t *)poll, on_closed);
}
