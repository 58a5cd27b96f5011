/*
 * folder-sync's native addon (fswalk.node): this file makes its exports; each job is in a file of
 * its own around fswalk.h:
 * - list.c: `list`, one folder into a listing thread's batch buffers;
 * - walker.c: `walkStart` .. `walkStop`, a thread of its own listing a whole tree into batches;
 * - pool.c: `syncFs` and `fixMetas`, batched calls on libuv's thread pool;
 * - copy.c: `copyToTemp`, a small copy's first half on the pool (only with OpenSSL's headers);
 * - times.c: `utimens`, times set to the nanosecond;
 * - watch.c: `watchOpen` .. `watchClose`, inotify read by a thread of its own (for --watch);
 * - common.c: the helpers they share.
 */
#include "fswalk.h"

/* Must match NATIVE_VERSION in src/native.ts: raised whenever `list` changes what it takes or answers (or a function is added). */
#define FSWALK_VERSION 10

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn, version;
  const struct { const char *name; napi_callback cb; } fns[] = {
    {"list", list}, {"walkStart", walk_start}, {"walkNext", walk_next}, {"walkCredit", walk_credit}, {"walkAhead", walk_ahead}, {"walkStop", walk_stop}, {"syncFs", sync_fs}, {"fixMetas", fix_metas}, {"utimens", utimens}, {"watchOpen", watch_open}, {"watchAdd", watch_add}, {"watchRemove", watch_remove}, {"watchClose", watch_close},
#ifdef HAVE_COPY_TO_TEMP
    {"copyToTemp", copy_to_temp},
#endif
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  napi_create_int32(env, FSWALK_VERSION, &version);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}
