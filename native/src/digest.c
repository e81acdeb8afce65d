// sha256(bytes), sha512(bytes): the digest of a Uint8Array as a Buffer, on the calling thread: what
// the CLI's loader checks its bundle and code cache with, and key ids, without loading node:crypto
// (an EVP one-shot, as node:crypto's createHash computes it).
// sha512Async(bytes): SHA-512 of a Uint8Array on a pool thread, so the main thread can check a
// signature over the same manifest meanwhile (`vault status`: the release id is SHA-512 of the
// manifest bytes, the Ed25519 check hashes them again inside OpenSSL). The bytes are copied when it
// is called: a reference keeps the JS array, not its memory, which a transfer of its ArrayBuffer
// hands to another owner that may free it while the pool thread reads (a copy of the 1.3 MB
// manifest takes about 0.1 ms).
#include "sentinel.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  unsigned char *bytes;  // the job's own copy
  size_t len;
  unsigned char digest[64];
  int failed;
  sn_job job;
} digest_job;

static void digest_job_free(napi_env env, void *data) {
  (void)env;
  digest_job *j = data;
  free(j->bytes);
  free(j);
}

static void digest_execute(napi_env env, void *data) {
  (void)env;
  digest_job *j = data;
  unsigned int n = 0;
  j->failed = EVP_Digest(j->bytes, j->len, j->digest, &n, EVP_sha512(), NULL) != 1 || n != sizeof j->digest;
}

static void digest_complete(napi_env env, napi_status status, void *data) {
  digest_job *j = data;
  int end = sn_job_end(env, &j->job, status);
  if (end < 0) napi_reject_deferred(env, j->job.deferred, sn_error(env, "sha512Async was cancelled"));
  else if (j->failed) napi_reject_deferred(env, j->job.deferred, sn_sys_error(env, EIO, "EVP_Digest", ""));
  else sn_job_resolve_buffer(env, &j->job, j->digest, sizeof j->digest);
  digest_job_free(env, j);
}

static napi_value sha512_async(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  size_t len = 0;
  const unsigned char *bytes = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !sn_uint8_array(env, argv[0], &bytes, &len)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "sha512Async(bytes: Uint8Array)");
    return NULL;
  }
  digest_job *j = calloc(1, sizeof *j);
  // At least one byte: malloc(0) may answer NULL.
  if (j == NULL || (j->bytes = malloc(len > 0 ? len : 1)) == NULL) {
    free(j);
    sn_throw_sys(env, ENOMEM, "malloc", "");
    return NULL;
  }
  if (len > 0) memcpy(j->bytes, bytes, len);
  j->len = len;
  return sn_job_start(env, &j->job, "sentinel:sha512", digest_execute, digest_complete, j, 1, digest_job_free);
}

// The one Uint8Array argument, or a TypeError thrown and 0.
static int bytes_arg(napi_env env, napi_callback_info info, const char *usage, const unsigned char **bytes, size_t *len) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !sn_uint8_array(env, argv[0], bytes, len)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  return 1;
}

static napi_value digest_now(napi_env env, napi_callback_info info, const EVP_MD *md, size_t size, const char *usage) {
  const unsigned char *bytes;
  size_t len;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  napi_value out;
  void *copy = NULL;
  if (!bytes_arg(env, info, usage, &bytes, &len)) return NULL;
  if (EVP_Digest(bytes, len, digest, &n, md, NULL) != 1 || n != size) {
    sn_throw_sys(env, EIO, "EVP_Digest", "");
    return NULL;
  }
  if (napi_create_buffer_copy(env, n, digest, &copy, &out) != napi_ok) {
    sn_throw_sys(env, ENOMEM, "napi_create_buffer_copy", "");
    return NULL;
  }
  return out;
}

static napi_value sha256_now(napi_env env, napi_callback_info info) {
  return digest_now(env, info, EVP_sha256(), 32, "sha256(bytes: Uint8Array)");
}

static napi_value sha512_now(napi_env env, napi_callback_info info) {
  return digest_now(env, info, EVP_sha512(), 64, "sha512(bytes: Uint8Array)");
}

// sha256Stream(): a SHA-256 fed in pieces, for digests of data read in chunks that do not follow
// its boundaries (a kept bundle's payload files, src/adapters/kept-bundle.ts). An empty object
// tagged as this addon's stream, its EVP context freed with it. sha256Update(stream, bytes) feeds
// it; sha256Digest(stream) answers the digest of everything fed since it began or since the last
// digest (a Buffer of 32) and begins again.
static const napi_type_tag SHA256_STREAM = { 0x5e7a1d6c0b3f4e21ULL, 0x9c8d2b47a6f01e35ULL };

static void stream_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  EVP_MD_CTX_free(data);
}

static napi_value sha256_stream(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    sn_throw_sys(env, ENOMEM, "EVP_DigestInit_ex", "");
    return NULL;
  }
  if (napi_create_object(env, &out) != napi_ok || napi_wrap(env, out, ctx, stream_free, NULL, NULL) != napi_ok) {
    EVP_MD_CTX_free(ctx);
    sn_throw_sys(env, ENOMEM, "napi_wrap", "");
    return NULL;
  }
  // Wrapped: from here the object owns the context (freed with it, also if tagging fails).
  if (napi_type_tag_object(env, out, &SHA256_STREAM) != napi_ok) {
    sn_throw_sys(env, ENOMEM, "napi_type_tag_object", "");
    return NULL;
  }
  return out;
}

// The stream argument's context, or a TypeError thrown and NULL: only an object this addon made.
static EVP_MD_CTX *stream_arg(napi_env env, napi_value v, const char *usage) {
  napi_valuetype t;
  bool tagged = false;
  void *ctx = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object || napi_check_object_type_tag(env, v, &SHA256_STREAM, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, v, &ctx) != napi_ok || ctx == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  return ctx;
}

static napi_value sha256_update(napi_env env, napi_callback_info info) {
  static const char usage[] = "sha256Update(stream: a sha256Stream(), bytes: Uint8Array)";
  size_t argc = 2;
  napi_value argv[2];
  const unsigned char *bytes = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  EVP_MD_CTX *ctx = stream_arg(env, argv[0], usage);
  if (ctx == NULL) return NULL;
  if (!sn_uint8_array(env, argv[1], &bytes, &len)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  if (EVP_DigestUpdate(ctx, bytes, len) != 1) {
    sn_throw_sys(env, EIO, "EVP_DigestUpdate", "");
    return NULL;
  }
  return NULL;
}

static napi_value sha256_digest(napi_env env, napi_callback_info info) {
  static const char usage[] = "sha256Digest(stream: a sha256Stream())";
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  EVP_MD_CTX *ctx = stream_arg(env, argv[0], usage);
  if (ctx == NULL) return NULL;
  unsigned char digest[32];
  unsigned int n = 0;
  // Begun again whatever the answer: a failed digest leaves no half-fed state behind.
  int ok = EVP_DigestFinal_ex(ctx, digest, &n) == 1 && n == sizeof digest;
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 || !ok) {
    sn_throw_sys(env, EIO, "EVP_DigestFinal_ex", "");
    return NULL;
  }
  napi_value out;
  void *copy = NULL;
  if (napi_create_buffer_copy(env, n, digest, &copy, &out) != napi_ok) {
    sn_throw_sys(env, ENOMEM, "napi_create_buffer_copy", "");
    return NULL;
  }
  return out;
}

napi_status sn_register_digest(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = { SN_FN("sha512Async", sha512_async), SN_FN("sha256", sha256_now), SN_FN("sha512", sha512_now),
                                             SN_FN("sha256Stream", sha256_stream), SN_FN("sha256Update", sha256_update), SN_FN("sha256Digest", sha256_digest) };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
