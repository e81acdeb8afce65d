// Ed25519 verification (RFC 8032, pure Ed25519) through OpenSSL's EVP: the library and the calls
// node:crypto verifies with, so a process that checks a signature need not load node:crypto
// (src/vault/ed25519.ts). That caller makes the project's strict checks first (src/core/signature.ts
// isStrictSignature: the lengths, S < L, no small-order or non-canonical key or R); OpenSSL checks
// S < L again itself.
//   ed25519Verify(message, signature, publicKey): boolean
// The answer is true only when EVP_DigestVerify returns 1; a signature of another length than 64
// bytes or a key of another length than 32 is false. OpenSSL failing to set the check up (no
// memory, no Ed25519 in this OpenSSL) throws: it is never an answer.
#include "sentinel.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>

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

napi_status sn_register_ed25519(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("ed25519Verify", ed25519_verify),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
