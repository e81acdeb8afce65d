// Ed25519 verification (RFC 8032, pure Ed25519) through OpenSSL's EVP: the library and the calls
// node:crypto verifies with, so a process that checks a signature need not load node:crypto
// (src/vault/ed25519.ts). That caller makes the project's strict checks first (src/core/signature.ts
// isStrictSignature: the lengths, S < L, no small-order or non-canonical key or R); OpenSSL checks
// S < L again itself.
//   ed25519Verify(message, signature, publicKey): boolean
//   ed25519VerifyAsync(message, signature, publicKey): Promise<boolean>, the same on a pool thread
//     over a copy of the three made when it is called: a reference would keep the JS array, not its
//     memory, which a transfer of its ArrayBuffer hands to another owner that may free it while the
//     pool thread reads (a copy of a 1.3 MB manifest takes about 0.1 ms).
// The answer is true only when EVP_DigestVerify returns 1; a signature of another length than 64
// bytes or a key of another length than 32 is false. OpenSSL failing to set the check up (no
// memory, no Ed25519 in this OpenSSL) throws or rejects: it is never an answer.
#include "sentinel.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ED25519_SIG_BYTES 64
#define ED25519_KEY_BYTES 32

// 1 valid, 0 not valid, -1 when OpenSSL could not set the check up (*what names the call).
static int ed25519_check(const unsigned char *msg, size_t len, const unsigned char *sig, const unsigned char *key, const char **what) {
  int rc = -1;
  EVP_MD_CTX *ctx = NULL;
  EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, ED25519_KEY_BYTES);
  if (pkey == NULL) {
    *what = "EVP_PKEY_new_raw_public_key";
  } else if ((ctx = EVP_MD_CTX_new()) == NULL) {
    *what = "EVP_MD_CTX_new";
  } else if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
    *what = "EVP_DigestVerifyInit";
  } else {
    rc = EVP_DigestVerify(ctx, sig, ED25519_SIG_BYTES, msg, len) == 1 ? 1 : 0;
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  // A refused signature leaves entries in this thread's OpenSSL error queue, which node:crypto on the
  // main thread would otherwise find and report with its next unrelated failure.
  ERR_clear_error();
  return rc;
}

static napi_value openssl_error(napi_env env, const char *what) {
  char msg[160];
  napi_value code, message, err;
  snprintf(msg, sizeof msg, "Ed25519 verification could not be set up: %s failed", what);
  napi_create_string_utf8(env, "ERR_SENTINEL_OPENSSL", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &err);
  return err;
}

// The three arguments: Uint8Arrays, or a TypeError thrown and 0. *lengths_ok is false when the
// signature or the key has the wrong length (the answer is then false, nothing is checked).
static int read_args(napi_env env, napi_callback_info info, const char *usage, const unsigned char **msg, size_t *len,
                     const unsigned char **sig, const unsigned char **key, bool *lengths_ok) {
  size_t argc = 3;
  napi_value argv[3];
  size_t lens[3] = { 0, 0, 0 };
  const unsigned char *data[3] = { NULL, NULL, NULL };
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return 0;
  }
  for (int i = 0; i < 3; i++) {
    // Never NULL, even for an empty array: OpenSSL is given a valid pointer all the same.
    if (!sn_uint8_array(env, argv[i], &data[i], &lens[i])) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
      return 0;
    }
  }
  *msg = data[0];
  *len = lens[0];
  *sig = data[1];
  *key = data[2];
  *lengths_ok = lens[1] == ED25519_SIG_BYTES && lens[2] == ED25519_KEY_BYTES;
  return 1;
}

static napi_value ed25519_verify(napi_env env, napi_callback_info info) {
  napi_value out;
  const unsigned char *msg, *sig, *key;
  size_t len;
  bool lengths_ok;
  if (!read_args(env, info, "ed25519Verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array)", &msg, &len, &sig, &key, &lengths_ok)) return NULL;
  int rc = 0;
  if (lengths_ok) {
    const char *what = "";
    rc = ed25519_check(msg, len, sig, key, &what);
    if (rc < 0) {
      napi_throw(env, openssl_error(env, what));
      return NULL;
    }
  }
  napi_get_boolean(env, rc == 1, &out);
  return out;
}

typedef struct {
  unsigned char *msg;  // the job's own copy
  size_t len;
  unsigned char sig[ED25519_SIG_BYTES];
  unsigned char key[ED25519_KEY_BYTES];
  int rc;
  const char *what;
  sn_job job;
} verify_job;

static void verify_job_free(napi_env env, void *data) {
  (void)env;
  verify_job *j = data;
  free(j->msg);
  free(j);
}

static void verify_execute(napi_env env, void *data) {
  (void)env;
  verify_job *j = data;
  j->rc = ed25519_check(j->msg, j->len, j->sig, j->key, &j->what);
}

static void verify_complete(napi_env env, napi_status status, void *data) {
  verify_job *j = data;
  napi_value answer;
  int end = sn_job_end(env, &j->job, status);
  if (end < 0) {
    napi_reject_deferred(env, j->job.deferred, sn_error(env, "ed25519VerifyAsync was cancelled"));
  } else if (j->rc < 0) {
    napi_reject_deferred(env, j->job.deferred, openssl_error(env, j->what));
  } else {
    napi_get_boolean(env, j->rc == 1, &answer);
    napi_resolve_deferred(env, j->job.deferred, answer);
  }
  verify_job_free(env, j);
}

static napi_value ed25519_verify_async(napi_env env, napi_callback_info info) {
  napi_value promise, answer;
  const unsigned char *msg, *sig, *key;
  size_t len;
  bool lengths_ok;
  if (!read_args(env, info, "ed25519VerifyAsync(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array)", &msg, &len, &sig, &key, &lengths_ok)) return NULL;
  if (!lengths_ok) {
    // Nothing to check: false, settled like any other answer (never thrown).
    napi_deferred deferred;
    if (napi_create_promise(env, &deferred, &promise) != napi_ok) {
      sn_throw_sys(env, ENOMEM, "napi_create_promise", "");
      return NULL;
    }
    napi_get_boolean(env, false, &answer);
    napi_resolve_deferred(env, deferred, answer);
    return promise;
  }
  verify_job *j = calloc(1, sizeof *j);
  // At least one byte: malloc(0) may answer NULL.
  if (j == NULL || (j->msg = malloc(len > 0 ? len : 1)) == NULL) {
    free(j);
    sn_throw_sys(env, ENOMEM, "malloc", "");
    return NULL;
  }
  if (len > 0) memcpy(j->msg, msg, len);
  j->len = len;
  memcpy(j->sig, sig, sizeof j->sig);
  memcpy(j->key, key, sizeof j->key);
  j->rc = -1;
  j->what = "";
  return sn_job_start(env, &j->job, "sentinel:ed25519Verify", verify_execute, verify_complete, j, 1, verify_job_free);
}

napi_status sn_register_ed25519(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("ed25519Verify", ed25519_verify),
    SN_FN("ed25519VerifyAsync", ed25519_verify_async),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
