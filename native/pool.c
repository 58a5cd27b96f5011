/*
 * The batched calls made on libuv's thread pool, for the main thread's plan: syncFs (one syncfs
 * before a batch's fsyncs) and fixMetas (a batch of permission and time fixes).
 */
#include "fswalk.h"

/*
 * syncFs(fd): a promise of 0 once syncfs(2) has written out the whole filesystem holding `fd`, or
 * of the errno it failed with. It runs on libuv's thread pool; `fd` must stay open until then.
 *
 * Perf: flushing a batch of 64 files one fsync each costs the filesystem a journal commit for each
 * few of them; one syncfs first writes them all out with one commit, and each file's own fsync
 * after it finds nothing left to write. (That fsync is still made: it reports the file's own write
 * error, which syncfs reports only since Linux 5.8, and then for the whole filesystem.)
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int error;
} syncfs_t;

static void syncfs_execute(napi_env env, void *data) {
  syncfs_t *s = data;
  s->error = syncfs(s->fd) == 0 ? 0 : errno;
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  syncfs_t *s = data;
  napi_value result;
  napi_create_int32(env, status == napi_ok ? s->error : ECANCELED, &result);
  napi_resolve_deferred(env, s->deferred, result);
  napi_delete_async_work(env, s->work);
  free(s);
}

napi_value sync_fs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "syncFs(fd)");
    return NULL;
  }
  syncfs_t *s = calloc_or_throw(env, sizeof *s);
  if (!s) return NULL;
  s->fd = fd;
  if (napi_create_promise(env, &s->deferred, &promise) != napi_ok) {
    free(s);
    napi_throw_error(env, NULL, "syncFs: cannot create a promise");
    return NULL;
  }
  if (!queue_work(env, "folder-sync:syncfs", syncfs_execute, syncfs_complete, s, &s->work)) {
    napi_value code;
    napi_create_int32(env, EAGAIN, &code);
    napi_resolve_deferred(env, s->deferred, code);
    free(s);
  }
  return promise;
}

/*
 * fixMetas(paths, input, nums): for each absolute path i in turn, on libuv's thread pool, with
 * META_INPUTS numbers from input[i*META_INPUTS]: first its lstat, which must still show the
 * fingerprint the walk saw (numbers 5..10: size, mtime s/ns, ctime s/ns, inode); then its owner
 * and group set to numbers 11 and 12 (lchown; -1 leaves either, both -1 skip the call), its
 * permission bits to number 0 (unless it is negative: after the owner, which clears set-id bits),
 * its atime and mtime to numbers 1..4 (seconds, nanoseconds, to the nanosecond); then its lstat
 * written into nums from i*NUMS, as `list` writes an entry's. A promise of undefined when every
 * path went through, else of an array holding, at the index of each that failed, the Error Node's
 * fs would have thrown (syscall lstat, chmod or utime), or for a file that changed since the walk
 * an Error with code ECHANGED; the steps after a failed one are not made. An owner that could not
 * be set (a file system without owners) does not stop the rest: its Error (syscall chown) is at
 * the path's index, and its lstat in nums. A path is a string or, for a name that is not UTF-8,
 * a Buffer of its bytes. `input` and `nums` are held until it settles.
 *
 * Safety: the record made from the lstat after the fix vouches for the content the walk read (or
 * the cache vouched for); a file rewritten since (at the same size) would have been vouched for
 * unread. The check leaves a window of microseconds, not the whole walk.
 *
 * Perf: a pass that found 100k files' mtimes touched made these three calls for each on the main
 * thread, ~9 us a file (~0.9 s), after the hashing and while the other core sat idle; now the main
 * thread only records and logs (`applyMetas` in src/pass.ts).
 */
#define META_INPUTS 13
enum { META_OK, META_CHMOD, META_UTIME, META_LSTAT, META_CHANGED, META_CHOWN };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref, nums_ref;
  size_t count;
  char *paths;     /* NUL-joined */
  size_t *offsets; /* of each path in `paths` */
  const double *input;
  double *nums;
  int *errs;       /* per path: the errno of its failed step, or 0 */
  unsigned char *steps; /* per path: the step that failed (META_OK: none) */
  size_t failed;   /* how many failed */
} metas_t;

static void metas_free(napi_env env, metas_t *m) {
  if (m->input_ref) napi_delete_reference(env, m->input_ref);
  if (m->nums_ref) napi_delete_reference(env, m->nums_ref);
  free(m->paths);
  free(m->offsets);
  free(m->errs);
  free(m->steps);
  free(m);
}

/*
 * A time as utimensat takes it, to the nanosecond (see `fixMetas`): nanoseconds in 0..999999999,
 * so a time before 1970 given as (-100 s, -0.25 s) goes as (-101 s, +0.75 s), as libuv sends it.
 */
struct timespec meta_time(double seconds, double nanoseconds) {
  struct timespec t;
  /* Safety: a double past the range of long long (2^63 - 1 seconds, which tmpfs keeps, arrives as
   * 2^63) makes the cast undefined (it gave -2^63 here): such times are held to the range's ends,
   * which is where they came from. */
  long long s = seconds >= 9223372036854775807.0 ? LLONG_MAX : seconds <= -9223372036854775808.0 ? LLONG_MIN : (long long)seconds;
  long long ns = nanoseconds > -1e9 && nanoseconds < 1e9 ? (long long)nanoseconds : 0;
  if (s == LLONG_MAX || s == LLONG_MIN) ns = 0;
  s += ns / 1000000000;
  ns %= 1000000000;
  if (ns < 0 && s > LLONG_MIN) {
    ns += 1000000000;
    s -= 1;
  } else if (ns < 0) {
    ns = 0;
  }
  t.tv_sec = (time_t)s;
  t.tv_nsec = (long)ns;
  return t;
}

static void metas_execute(napi_env env, void *data) {
  metas_t *m = data;
  for (size_t i = 0; i < m->count; i++) {
    const char *path = m->paths + m->offsets[i];
    const double *in = m->input + i * META_INPUTS;
    struct timespec times[2] = {meta_time(in[1], in[2]), meta_time(in[3], in[4])};
    struct stat st;
    unsigned char step = META_OK;
    errno = 0;
    if (lstat(path, &st) != 0) step = META_LSTAT;
    else if (!same_fingerprint(&st, in + 5)) step = META_CHANGED;
    int owner_err = 0;
    if (step == META_OK && (in[11] >= 0 || in[12] >= 0) && lchown(path, in[11] >= 0 ? (uid_t)in[11] : (uid_t)-1, in[12] >= 0 ? (gid_t)in[12] : (gid_t)-1) != 0) owner_err = errno;
    if (step != META_OK) {
    } else if (in[0] >= 0 && chmod(path, (mode_t)in[0]) != 0) step = META_CHMOD;
    else if (utimensat(AT_FDCWD, path, times, 0) != 0) step = META_UTIME;
    else if (lstat(path, &st) != 0) step = META_LSTAT;
    if (step == META_OK) {
      fill_nums(&st, m->nums + i * NUMS);
      if (owner_err != 0) {
        m->errs[i] = owner_err;
        m->steps[i] = META_CHOWN;
        m->failed++;
      }
    } else {
      m->errs[i] = errno;
      m->steps[i] = step;
      m->failed++;
    }
  }
}

static void metas_complete(napi_env env, napi_status status, void *data) {
  static const char *const syscalls[] = {"", "chmod", "utime", "lstat", "", "chown"};
  metas_t *m = data;
  napi_value result, undefined;
  napi_get_undefined(env, &undefined);
  if (status != napi_ok) {
    napi_reject_deferred(env, m->deferred, errno_error(env, ECANCELED, "fixMetas", "", NULL));
  } else if (m->failed == 0) {
    napi_resolve_deferred(env, m->deferred, undefined);
  } else {
    napi_create_array_with_length(env, m->count, &result);
    for (size_t i = 0; i < m->count; i++) {
      napi_value item = undefined;
      if (m->steps[i] == META_CHANGED) item = changed_error(env, m->paths + m->offsets[i]);
      else if (m->steps[i] != META_OK) item = errno_error(env, m->errs[i], syscalls[m->steps[i]], m->paths + m->offsets[i], NULL);
      napi_set_element(env, result, (uint32_t)i, item);
    }
    napi_resolve_deferred(env, m->deferred, result);
  }
  napi_delete_async_work(env, m->work);
  metas_free(env, m);
}

napi_value fix_metas(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], promise;
  uint32_t count = 0;
  bool is_array = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "fixMetas(paths, input, nums)");
    return NULL;
  }
  metas_t *m = calloc_or_throw(env, sizeof *m);
  if (!m) return NULL;
  m->count = count;
  m->input = typed_data(env, argv[1], napi_float64_array, (size_t)count * META_INPUTS);
  m->nums = typed_data(env, argv[2], napi_float64_array, (size_t)count * NUMS);
  m->offsets = malloc((count ? count : 1) * sizeof *m->offsets);
  m->errs = calloc(count ? count : 1, sizeof *m->errs);
  m->steps = calloc(count ? count : 1, 1);
  if (count > 0 && (!m->input || !m->nums)) {
    metas_free(env, m);
    napi_throw_type_error(env, NULL, "fixMetas: input needs 13 numbers a path, nums 14 (Float64Array)");
    return NULL;
  }
  if (!m->offsets || !m->errs || !m->steps) {
    metas_free(env, m);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  size_t used = 0, cap = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    long at = napi_get_element(env, argv[0], i, &item) == napi_ok ? append_path(env, item, &m->paths, &used, &cap) : -1;
    if (at < 0) {
      metas_free(env, m);
      if (at == -2) napi_throw_error(env, NULL, "out of memory");
      else napi_throw_type_error(env, NULL, "fixMetas: paths must be strings or Buffers");
      return NULL;
    }
    m->offsets[i] = (size_t)at;
  }
  if (napi_create_reference(env, argv[1], 1, &m->input_ref) != napi_ok || napi_create_reference(env, argv[2], 1, &m->nums_ref) != napi_ok ||
      napi_create_promise(env, &m->deferred, &promise) != napi_ok) {
    metas_free(env, m);
    napi_throw_error(env, NULL, "fixMetas: cannot hold its arrays");
    return NULL;
  }
  if (!queue_work(env, "folder-sync:fixMetas", metas_execute, metas_complete, m, &m->work)) {
    napi_reject_deferred(env, m->deferred, errno_error(env, EAGAIN, "fixMetas", "", NULL));
    metas_free(env, m);
  }
  return promise;
}
