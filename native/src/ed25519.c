// Ed25519 verification (RFC 8032, pure Ed25519) through OpenSSL's EVP: the library and the calls
// node:crypto verifies with, so a process that checks a signature need not load node:crypto
// (src/vault/ed25519.ts). That caller makes the project's strict checks first (src/core/signature.ts
// isStrictSignature: the lengths, S < L, no small-order or non-canonical key or R); OpenSSL checks
// S < L again itself.
//   ed25519Verify(message, signature, publicKey): boolean
// The answer is true only when EVP_DigestVerify returns 1; a signature of another length than 64
// bytes or a key of another length than 32 is false. OpenSSL failing to set the check up (no
// memory, no Ed25519 in this OpenSSL) throws: it is never an answer.
//   ed25519IsPoint(encoding): boolean
// RFC 8032 5.1.3's decoding test of a 32-byte point encoding (a public key as it is read), with
// OpenSSL's big numbers: y is the encoding with bit 255 cleared, and it decodes iff
// u / v = (y^2 - 1) / (d y^2 + 1) is a non-zero square mod p, i.e. w = u v^(p-2) is not 0 and
// w^((p-1)/2) = 1. The same arithmetic as core's curveProblem (src/core/ed25519-points.ts), which
// runs it over BigInt in cold code (about 1 ms a key in a fresh process); core's byte-level checks
// come first there. An encoding of another length throws a TypeError; OpenSSL failing (no memory)
// throws: never an answer.
#include "sentinel.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
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

// p = 2^255 - 19 and d = -121665/121666 mod p, big-endian hex.
static const char FIELD_P[] = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed";
static const char CURVE_D[] = "52036cee2b6ffe738cc740797779e89800700a4d4141d8ab75eb4dca135978a3";

// 1 when the encoding (bit 255 cleared) decodes to a point, 0 when not, -1 when OpenSSL failed.
static int is_point(const unsigned char *enc) {
  unsigned char le[ED25519_KEY_BYTES];
  memcpy(le, enc, sizeof le);
  le[31] &= 0x7f;
  int rc = -1;
  BN_CTX *ctx = BN_CTX_new();
  BIGNUM *p = NULL, *d = NULL, *y = NULL, *y2 = NULL, *u = NULL, *v = NULL, *e = NULL, *w = NULL;
  if (ctx == NULL) return -1;
  BN_CTX_start(ctx);
  y2 = BN_CTX_get(ctx);
  u = BN_CTX_get(ctx);
  v = BN_CTX_get(ctx);
  e = BN_CTX_get(ctx);
  w = BN_CTX_get(ctx);
  if (w == NULL || BN_hex2bn(&p, FIELD_P) == 0 || BN_hex2bn(&d, CURVE_D) == 0 || (y = BN_lebin2bn(le, sizeof le, NULL)) == NULL) goto done;
  // y2 = y^2, u = y2 - 1, v = d y2 + 1 (all mod p)
  if (!BN_mod_sqr(y2, y, p, ctx) || !BN_mod_sub(u, y2, BN_value_one(), p, ctx) || !BN_mod_mul(v, d, y2, p, ctx) || !BN_mod_add(v, v, BN_value_one(), p, ctx)) goto done;
  // w = u v^(p-2): u / v (v = 0 gives w = 0, no point, as in core)
  if (!BN_copy(e, p) || !BN_sub_word(e, 2) || !BN_mod_exp(w, v, e, p, ctx) || !BN_mod_mul(w, u, w, p, ctx)) goto done;
  if (BN_is_zero(w)) {
    rc = 0;
    goto done;
  }
  // Euler's criterion: w^((p-1)/2) is 1 for a non-zero square
  if (!BN_copy(e, p) || !BN_sub_word(e, 1) || !BN_rshift1(e, e) || !BN_mod_exp(w, w, e, p, ctx)) goto done;
  rc = BN_is_one(w) ? 1 : 0;
done:
  BN_free(p);
  BN_free(d);
  BN_free(y);
  BN_CTX_end(ctx);
  BN_CTX_free(ctx);
  ERR_clear_error();
  return rc;
}

static napi_value ed25519_is_point(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  const unsigned char *enc = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !sn_uint8_array(env, argv[0], &enc, &len) || len != ED25519_KEY_BYTES) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "ed25519IsPoint(encoding: Uint8Array of 32 bytes)");
    return NULL;
  }
  int rc = is_point(enc);
  if (rc < 0) {
    napi_value code, message, err;
    napi_create_string_utf8(env, "ERR_SENTINEL_OPENSSL", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, "Ed25519 point decoding failed: OpenSSL's big-number arithmetic could not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &err);
    napi_throw(env, err);
    return NULL;
  }
  napi_value out;
  napi_get_boolean(env, rc == 1, &out);
  return out;
}

napi_status sn_register_ed25519(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
    SN_FN("ed25519Verify", ed25519_verify),
    SN_FN("ed25519IsPoint", ed25519_is_point),
  };
  return sn_export(env, exports, props, sizeof props / sizeof props[0]);
}
