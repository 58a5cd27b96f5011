/* A small copy's first half, on libuv's thread pool: copyToTemp. Built only where OpenSSL's headers
   are (HAVE_COPY_TO_TEMP in fswalk.h); elsewhere this file compiles to nothing. */

/*
 * copyToTemp(source, temp, nums, md5, maxBytes): the first half of a small copy (`writeCopy` in
 * src/execute.ts), on libuv's thread pool: opens `source` (O_NOFOLLOW), fstats it into `nums` (as
 * `list` writes an entry's), creates `temp` private (0600, truncated, O_NOFOLLOW), copies the
 * source into it while hashing it (MD5 into the 16 bytes of `md5`), fstats the source again, which
 * must still have the fingerprint of the first (else an Error with code ECHANGED), then gives
 * `temp` the source's permission bits. A promise of the open descriptor of `temp`, for the caller
 * to flush, rename and close; or rejected, after closing `temp` and removing it, with the Error
 * Node's fs would have thrown and a `step` (COPY_OPENING ..., see `COPY_STEPS` in src/execute.ts);
 * without a `step`, a copy this call does not make, for the caller to make itself: a source of
 * `maxBytes` or more (it grew since the walk: the caller copies large files otherwise, and can stop
 * while it does), or no MD5 from OpenSSL.
 *
 * Perf: the 1% change's 800 small copies took ~130 ms of the main thread's time (two opens, the
 * reads and writes, MD5) while the other core sat idle; here they run on the pool, several at once,
 * while the main thread renames, records and logs the copies before them. MD5 is OpenSSL's, the
 * one Node's crypto uses: Node exports its symbols to addons, and ships its headers with its own
 * (src/io.ts checks that this Node has OpenSSL before it asks; without the headers, no copyToTemp).
 */
#include "fswalk.h"

#ifdef HAVE_COPY_TO_TEMP
#include <openssl/evp.h>

enum { COPY_OPENING, COPY_READING, COPY_CREATING, COPY_WRITING, COPY_PERMISSIONS };
/* Errors with no step: the caller makes the copy (see above). */
#define COPY_CHANGED (-1)
#define COPY_TOO_BIG (-2)
#define COPY_NO_MD5 (-3)
/* Read and written at a time (CHUNK_SIZE in src/fingerprint.ts); one buffer per pool thread, kept for the process's life. */
#define COPY_CHUNK (1 << 20)
static __thread unsigned char *copy_buffer;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref nums_ref, md5_ref;
  char *source, *temp;
  double *nums;
  unsigned char *md5;
  double max_bytes;
  int fd;      /* the temporary file, once all went well */
  int error;   /* errno of the failed step, a COPY_ code below 0, or 0: none */
  int step;
  const char *syscall;
} copy_t;

static void copy_free(napi_env env, copy_t *c) {
  if (c->nums_ref) napi_delete_reference(env, c->nums_ref);
  if (c->md5_ref) napi_delete_reference(env, c->md5_ref);
  free(c->source);
  free(c->temp);
  free(c);
}

/* Records the failed step, with `err` (an errno, or a COPY_ code below 0); returns -1. */
static int copy_failed(copy_t *c, int step, const char *syscall, int err) {
  c->error = err ? err : EIO;
  c->step = step;
  c->syscall = syscall;
  return -1;
}

/* The source's bytes into `out`, hashed into `ctx`; 0, or -1 with the failure recorded. */
static int copy_bytes(copy_t *c, int in, int out, EVP_MD_CTX *ctx) {
  if (!copy_buffer && !(copy_buffer = malloc(COPY_CHUNK))) return copy_failed(c, COPY_READING, "read", ENOMEM);
  double total = 0;
  for (;;) {
    ssize_t n = read(in, copy_buffer, COPY_CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return copy_failed(c, COPY_READING, "read", errno);
    if (n == 0) return 0;
    if ((total += (double)n) >= c->max_bytes) return copy_failed(c, -1, "read", COPY_TOO_BIG);
    if (EVP_DigestUpdate(ctx, copy_buffer, (size_t)n) != 1) return copy_failed(c, -1, "read", COPY_NO_MD5);
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(out, copy_buffer + done, (size_t)(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return copy_failed(c, COPY_WRITING, "write", w < 0 ? errno : EIO);
      done += w;
    }
  }
}

static void copy_execute(napi_env env, void *data) {
  copy_t *c = data;
  struct stat before, after;
  int in = -1, out = -1, ok = -1;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1) {
    copy_failed(c, -1, "read", COPY_NO_MD5);
  } else if ((in = open(c->source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    copy_failed(c, COPY_OPENING, "open", errno);
  } else if (fstat(in, &before) != 0) {
    copy_failed(c, COPY_READING, "fstat", errno);
  } else if ((double)before.st_size >= c->max_bytes) {
    copy_failed(c, -1, "read", COPY_TOO_BIG);
  } else if ((out = open(c->temp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
    copy_failed(c, COPY_CREATING, "open", errno);
  } else if (copy_bytes(c, in, out, ctx) != 0) {
    /* recorded */
  } else if (fstat(in, &after) != 0) {
    copy_failed(c, COPY_READING, "fstat", errno);
  } else {
    fill_nums(&before, c->nums);
    if (!same_fingerprint(&after, (const double[]){c->nums[1], c->nums[3], c->nums[4], c->nums[5], c->nums[6], c->nums[9]})) {
      copy_failed(c, -1, "read", COPY_CHANGED);
    } else if (fchmod(out, before.st_mode & 07777) != 0) {
      copy_failed(c, COPY_PERMISSIONS, "fchmod", errno);
    } else if (EVP_DigestFinal_ex(ctx, c->md5, NULL) != 1) {
      copy_failed(c, -1, "read", COPY_NO_MD5);
    } else {
      ok = 0;
    }
  }
  if (ctx) EVP_MD_CTX_free(ctx);
  if (in >= 0) close(in);
  if (ok == 0) {
    c->fd = out;
    c->error = 0;
  } else if (out >= 0) {
    close(out);
    unlink(c->temp);
  }
}

static void copy_complete(napi_env env, napi_status status, void *data) {
  copy_t *c = data;
  if (status != napi_ok) {
    /* Not run (cancelled): nothing was opened. */
    napi_reject_deferred(env, c->deferred, errno_error(env, ECANCELED, "copyToTemp", c->source, NULL));
  } else if (c->error == 0) {
    napi_value fd;
    napi_create_int32(env, c->fd, &fd);
    napi_resolve_deferred(env, c->deferred, fd);
  } else {
    napi_value error, step;
    if (c->error == COPY_CHANGED) {
      error = changed_error(env, c->source);
    } else if (c->error < 0) {
      napi_value code, text;
      napi_create_string_utf8(env, c->error == COPY_TOO_BIG ? "ETOOBIG" : "ENOMD5", NAPI_AUTO_LENGTH, &code);
      napi_create_string_utf8(env, c->error == COPY_TOO_BIG ? "not a small copy: the source has grown" : "no MD5 from OpenSSL", NAPI_AUTO_LENGTH, &text);
      napi_create_error(env, code, text, &error);
    } else {
      /* As Node's: a path for the calls that take one (the opens), none for those on a descriptor. */
      const char *path = c->step == COPY_OPENING ? c->source : c->step == COPY_CREATING ? c->temp : NULL;
      error = errno_error(env, c->error, c->syscall, path, NULL);
    }
    if (c->step >= 0) {
      napi_create_int32(env, c->step, &step);
      napi_set_named_property(env, error, "step", step);
    }
    napi_reject_deferred(env, c->deferred, error);
  }
  napi_delete_async_work(env, c->work);
  copy_free(env, c);
}

/* A string argument, malloc'ed (NULL if it is not a string, or out of memory). */
napi_value copy_to_temp(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], promise;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  copy_t *c = calloc_or_throw(env, sizeof *c);
  if (!c) return NULL;
  if (argc < 5 || !(c->source = path_arg(env, argv[0])) || !(c->temp = path_arg(env, argv[1])) ||
      !(c->nums = typed_data(env, argv[2], napi_float64_array, NUMS)) || !(c->md5 = typed_data(env, argv[3], napi_uint8_array, 16)) ||
      napi_get_value_double(env, argv[4], &c->max_bytes) != napi_ok) {
    copy_free(env, c);
    napi_throw_type_error(env, NULL, "copyToTemp(source, temp, nums: Float64Array(14), md5: Uint8Array(16), maxBytes)");
    return NULL;
  }
  if (napi_create_reference(env, argv[2], 1, &c->nums_ref) != napi_ok || napi_create_reference(env, argv[3], 1, &c->md5_ref) != napi_ok ||
      napi_create_promise(env, &c->deferred, &promise) != napi_ok) {
    copy_free(env, c);
    napi_throw_error(env, NULL, "copyToTemp: cannot hold its arrays");
    return NULL;
  }
  if (!queue_work(env, "folder-sync:copyToTemp", copy_execute, copy_complete, c, &c->work)) {
    napi_reject_deferred(env, c->deferred, errno_error(env, EAGAIN, "copyToTemp", c->source, NULL));
    copy_free(env, c);
  }
  return promise;
}
#endif
