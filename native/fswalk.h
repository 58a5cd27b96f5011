/*
 * What the addon's files (addon.c lists them) share: the includes, the numbers and names that must
 * match the TypeScript, the names `read_sorted` reads, the declarations of the helpers more than one
 * job uses (in common.c) and of the functions addon.c exports (each in its job's file).
 */
#ifndef FSWALK_H
#define FSWALK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* An entry's numbers (`fill_nums`): must match `AT` and `NUMS` in src/tree/entry.ts. */
#define NUMS 14
#define KIND_FILE 0
#define KIND_DIR 1
#define KIND_SYMLINK 2
#define KIND_SPECIAL 3

/* Must match isTempName in src/tree/scan.ts: .folder-sync-<16 hex digits>.tmp */
#define TEMP_PREFIX ".folder-sync-"
#define TEMP_PREFIX_LEN 13
#define TEMP_LEN (TEMP_PREFIX_LEN + 16 + 4)

typedef struct {
  size_t at; /* offset of the name in the arena (which may move while names are added) */
  size_t len;
  const char *p; /* the name, once all are read */
} name_t;

typedef struct {
  char *arena;
  size_t arena_used, arena_cap;
  name_t *names;
  size_t count, cap;
} names_t;

/* `read_sorted`'s error when this process could not grow its list of names (not the folder's fault). */
#define NAMES_NO_MEMORY (-ENOMEM)

/* copyToTemp (copy.c) is built only where OpenSSL's headers are (see copy.c). */
#if __has_include(<openssl/evp.h>)
#define HAVE_COPY_TO_TEMP 1
#endif

/* Hidden: shared between this addon's files, but not exported from fswalk.node (which exports
   only its module init, as when everything was static in one file). */
#pragma GCC visibility push(hidden)

/* common.c: names and folders */
void names_free(names_t *n);
int is_temp(const char *s, size_t len);
int is_utf8(const unsigned char *s, size_t len);
DIR *read_sorted(const char *path, int flags, names_t *names, int *err);
int fill_nums(const struct stat *st, double *nums);
size_t transport_len(const char *name, size_t len);
size_t write_transport(unsigned char *out, const char *name, size_t len);
long append_path(napi_env env, napi_value value, char **buf, size_t *used, size_t *cap);
char *path_arg(napi_env env, napi_value value);
struct timespec meta_time(double seconds, double nanoseconds);
int same_fingerprint(const struct stat *st, const double *expected);
int stat_into(int dfd, const char *name, double *nums);
int grow(void **p, size_t *cap, size_t need, size_t size);

/* common.c: errors as Node's fs makes them */
void format_errno(char *message, size_t size, int err, const char *syscall, const char *path, const char *name);
napi_value errno_error(napi_env env, int err, const char *syscall, const char *path, const char *name);
void throw_errno(napi_env env, int err, const char *syscall, const char *path, const char *name);
napi_value changed_error(napi_env env, const char *path);

/* common.c: N-API arguments and work on libuv's thread pool */
void *calloc_or_throw(napi_env env, size_t size);
void *typed_data(napi_env env, napi_value value, napi_typedarray_type type, size_t count);
bool queue_work(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data, napi_async_work *work);

/* The functions addon.c exports. */
napi_value list(napi_env env, napi_callback_info info);              /* list.c */
napi_value walk_start(napi_env env, napi_callback_info info);        /* walker.c */
napi_value walk_next(napi_env env, napi_callback_info info);
napi_value walk_credit(napi_env env, napi_callback_info info);
napi_value walk_ahead(napi_env env, napi_callback_info info);
napi_value walk_stop(napi_env env, napi_callback_info info);
napi_value sync_fs(napi_env env, napi_callback_info info);           /* pool.c */
napi_value fix_metas(napi_env env, napi_callback_info info);
napi_value utimens(napi_env env, napi_callback_info info);            /* times.c */
napi_value watch_open(napi_env env, napi_callback_info info);         /* watch.c */
napi_value watch_add(napi_env env, napi_callback_info info);
napi_value watch_remove(napi_env env, napi_callback_info info);
napi_value watch_close(napi_env env, napi_callback_info info);
#ifdef HAVE_COPY_TO_TEMP
napi_value copy_to_temp(napi_env env, napi_callback_info info);      /* copy.c */
#endif

#pragma GCC visibility pop

#endif
