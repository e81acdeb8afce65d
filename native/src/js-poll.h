// What the addon's uv_poll readers share (notify-listen.c: the notify socket; bpf-engine.c: the
// eBPF ring buffer): each hands what it read to one JS callback from the libuv loop, and closes its
// callback, async context and uv handle the same way.
#ifndef SENTINEL_JS_POLL_H
#define SENTINEL_JS_POLL_H
#include <node_api.h>
#include <stddef.h>
#include <uv.h>

// Calls the function behind `callback` (the global object as `this`) with argv in `async`'s
// context. An exception it throws is reported like any uncaught one (napi_fatal_exception), never
// swallowed. Nothing is called when callback is NULL or its function cannot be had. The caller
// holds a handle scope.
void sn_js_poll_call(napi_env env, napi_ref callback, napi_async_context async, size_t argc, const napi_value *argv);

// The part of closing a reader that comes after it stopped polling: drops the callback and its
// async context (both set to NULL) and starts closing the uv handle when it is open and not already
// closing; on_closed runs on a later loop turn.
void sn_js_poll_release(napi_env env, napi_ref *callback, napi_async_context *async, uv_poll_t *poll, int handle_open,
                        uv_close_cb on_closed);

#endif
