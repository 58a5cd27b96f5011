/*
 * folder-sync's native listing: one call lists one folder, as the listing thread's JavaScript
 * (`listFolder` in src/lister-worker.ts) does with readdir and one lstat per name, and writes the
 * result straight into the thread's batch buffers: the names, UTF-8 and joined by NUL, into
 * `text`; NUMS numbers per entry into `nums`.
 *
 * Perf: the JavaScript does the same work at ~3.5 us of CPU per entry: a string per name, a path
 * per lstat, and the kernel walking that whole path again for each name. Here the names never
 * become strings (only subfolders, temporary files and undecodable names do) and each lstat is an
 * fstatat relative to the open folder, which the kernel resolves in one step: ~2.2 us per entry,
 * nearly all of it the kernel's (GNU `find` takes the same).
 *
 * `list` keeps no state: it is loaded in each listing thread. The walker (`walkStart`, below) is
 * the listing thread's work without the Node thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Must match src/lister.ts. */
#define NUMS 10
#define KIND_FILE 0
#define KIND_DIR 1
#define KIND_SYMLINK 2
#define KIND_SPECIAL 3

/* Must match isTempName in src/scan.ts: .folder-sync-<16 hex digits>.tmp */
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

static void names_free(names_t *n) {
  free(n->arena);
  free(n->names);
}

static int names_add(names_t *n, const char *name, size_t len) {
  if (n->arena_used + len + 1 > n->arena_cap) {
    size_t cap = n->arena_cap ? n->arena_cap * 2 : 8192;
    while (cap < n->arena_used + len + 1) cap *= 2;
    char *a = realloc(n->arena, cap);
    if (!a) return -1;
    n->arena = a;
    n->arena_cap = cap;
  }
  if (n->count == n->cap) {
    size_t cap = n->cap ? n->cap * 2 : 256;
    name_t *a = realloc(n->names, cap * sizeof(name_t));
    if (!a) return -1;
    n->names = a;
    n->cap = cap;
  }
  memcpy(n->arena + n->arena_used, name, len + 1);
  n->names[n->count].at = n->arena_used;
  n->names[n->count].len = len;
  n->arena_used += len + 1;
  n->count++;
  return 0;
}

/*
 * The order of `byName` in src/scan.ts: UTF-16 code units. That is the order of the UTF-8 bytes,
 * except that a character beyond U+FFFF (4 bytes, lead 0xF0-0xF4: a surrogate pair, 0xD800-0xDBFF,
 * in UTF-16) comes before U+E000-U+FFFF (lead 0xEE or 0xEF). Names share their bytes up to the
 * first difference, so there both bytes begin a character or both continue the same kind of one.
 */
static int by_name(const void *pa, const void *pb) {
  const name_t *a = pa, *b = pb;
  const unsigned char *x = (const unsigned char *)a->p;
  const unsigned char *y = (const unsigned char *)b->p;
  size_t n = a->len < b->len ? a->len : b->len;
  for (size_t i = 0; i < n; i++) {
    unsigned c = x[i], d = y[i];
    if (c == d) continue;
    if (c >= 0xF0 && (d == 0xEE || d == 0xEF)) return -1;
    if (d >= 0xF0 && (c == 0xEE || c == 0xEF)) return 1;
    return c < d ? -1 : 1;
  }
  return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

static int is_temp(const char *s, size_t len) {
  if (len != TEMP_LEN || memcmp(s, TEMP_PREFIX, TEMP_PREFIX_LEN) != 0) return 0;
  for (size_t i = TEMP_PREFIX_LEN; i < TEMP_PREFIX_LEN + 16; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
  }
  return memcmp(s + TEMP_PREFIX_LEN + 16, ".tmp", 4) == 0;
}

/* Whether `s` is valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
static int is_utf8(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) n = 1, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, min = 0x10000, c &= 0x07;
    else return 0;
    if (i + n >= len) return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    i += n + 1;
  }
  return 1;
}

static int kind_of(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return KIND_FILE;
    case S_IFDIR: return KIND_DIR;
    case S_IFLNK: return KIND_SYMLINK;
    default: return KIND_SPECIAL;
  }
}

/* Node's fs message for an error: "<CODE>: <description>, <syscall> '<path>'" (without a path: "..., <syscall>"). */
static void format_errno(char *message, size_t size, int err, const char *syscall, const char *path, const char *name) {
  const char *code = uv_err_name(-err);
  if (!path)
    snprintf(message, size, "%s: %s, %s", code, uv_strerror(-err), syscall);
  else if (name)
    snprintf(message, size, "%s: %s, %s '%s/%s'", code, uv_strerror(-err), syscall, path, name);
  else
    snprintf(message, size, "%s: %s, %s '%s'", code, uv_strerror(-err), syscall, path);
}

/* An Error as Node's fs makes one (see `format_errno`), with .code, .errno and .syscall. */
static napi_value errno_error(napi_env env, int err, const char *syscall, const char *path, const char *name) {
  char message[8192];
  const char *code = uv_err_name(-err);
  format_errno(message, sizeof message, err, syscall, path, name);
  napi_value error, code_value, message_value;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  napi_create_error(env, code_value, message_value, &error);
  napi_value errno_value;
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_value syscall_value;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  return error;
}

/* Throws an Error as Node's fs would (see `errno_error`). */
static void throw_errno(napi_env env, int err, const char *syscall, const char *path, const char *name) {
  napi_throw(env, errno_error(env, err, syscall, path, name));
}

/* `read_sorted`'s error when this process could not grow its list of names (not the folder's fault). */
#define NAMES_NO_MEMORY (-ENOMEM)

/*
 * Opens folder `path` (with `flags` added to open's) and reads its names (but . and ..) into `names`, in `byName` order. Returns
 * the open folder, or NULL with `*err` set: the errno of the call that failed, or NAMES_NO_MEMORY.
 */
static DIR *read_sorted(const char *path, int flags, names_t *names, int *err) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
  if (fd < 0) {
    *err = errno;
    return NULL;
  }
  DIR *dir = fdopendir(fd);
  if (!dir) {
    *err = errno;
    close(fd);
    return NULL;
  }
  struct dirent *e;
  int failed = 0;
  for (;;) {
    errno = 0;
    e = readdir(dir);
    if (!e) {
      failed = errno;
      break;
    }
    const char *n = e->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    if (names_add(names, n, strlen(n)) != 0) {
      failed = NAMES_NO_MEMORY;
      break;
    }
  }
  if (failed != 0) {
    *err = failed;
    closedir(dir);
    names_free(names);
    *names = (names_t){0};
    return NULL;
  }
  for (size_t i = 0; i < names->count; i++) names->names[i].p = names->arena + names->names[i].at;
  if (names->count > 1) qsort(names->names, names->count, sizeof(name_t), by_name);
  return dir;
}

/* `st` as NUMS numbers into `nums` (the layout `entryAt` in src/lister.ts reads); returns its kind. */
static int fill_nums(const struct stat *st, double *nums) {
  int kind = kind_of(st->st_mode);
  nums[0] = kind;
  nums[1] = (double)st->st_size;
  nums[2] = st->st_mode & 07777;
  nums[3] = (double)st->st_mtim.tv_sec;
  nums[4] = (double)st->st_mtim.tv_nsec;
  nums[5] = (double)st->st_ctim.tv_sec;
  nums[6] = (double)st->st_ctim.tv_nsec;
  nums[7] = (double)st->st_atim.tv_sec;
  nums[8] = (double)st->st_atim.tv_nsec;
  nums[9] = (double)st->st_ino;
  return kind;
}

/*
 * lstat of `name` in the open folder `dfd`, as NUMS numbers into `nums`: the entry's kind, or -1
 * if it is gone since the folder was read, or -2 with errno set if the lstat failed otherwise.
 */
static int stat_into(int dfd, const char *name, double *nums) {
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT || errno == ENOTDIR ? -1 : -2;
  return fill_nums(&st, nums);
}

static napi_value push_string(napi_env env, napi_value *array, uint32_t *length, const char *s, size_t len) {
  if (*array == NULL) napi_create_array(env, array);
  napi_value value;
  napi_create_string_utf8(env, s, len, &value);
  napi_set_element(env, *array, (*length)++, value);
  return *array;
}

/*
 * list(path, text, textAt, nums, numsAt)
 *
 * Lists folder `path`. Writes its names, in `byName` order and joined by NUL, into `text` from
 * byte `textAt`, and NUMS numbers per name into `nums` from index `numsAt` (kind, size,
 * permissions, mtime s and ns, ctime s and ns, atime s and ns, inode), and returns
 * [textEnd, numsEnd, subfolders, temps, undecodable]: the names of the entries that are folders,
 * in order; the names of our temporary files and the names that are not UTF-8, left out of the
 * listing (each array is undefined when empty). An entry gone since the folder was read is left
 * out too. If `text` or `nums` lacks room, nothing is written and it returns [-1, text bytes
 * needed, numbers needed]. Throws as Node's fs does if the folder cannot be read or an lstat
 * fails for a reason other than the entry being gone.
 */
static napi_value list(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "list(path, text, textAt, nums, numsAt)");
    return NULL;
  }
  size_t path_len;
  char path[4096 + 1];
  /* The length first: given a buffer too small, napi_get_value_string_utf8 stops before a
     character that does not fit whole, so the copy's length alone cannot tell a truncated path. */
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &path_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "path must be a string");
    return NULL;
  }
  if (path_len >= sizeof path - 1) {
    napi_get_value_string_utf8(env, argv[0], path, sizeof path, NULL);
    throw_errno(env, ENAMETOOLONG, "scandir", path, NULL);
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], path, sizeof path, NULL);
  if (strlen(path) != path_len) {
    napi_throw_type_error(env, NULL, "path must not contain a NUL");
    return NULL;
  }
  napi_typedarray_type type;
  size_t text_cap, nums_cap;
  void *text_data, *nums_data;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[1], &type, &text_cap, &text_data, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "text must be a Uint8Array");
    return NULL;
  }
  if (napi_get_typedarray_info(env, argv[3], &type, &nums_cap, &nums_data, &ab, &offset) != napi_ok || type != napi_float64_array) {
    napi_throw_type_error(env, NULL, "nums must be a Float64Array");
    return NULL;
  }
  int64_t text_at = -1, nums_at = -1;
  if (napi_get_value_int64(env, argv[2], &text_at) != napi_ok) text_at = -1;
  if (napi_get_value_int64(env, argv[4], &nums_at) != napi_ok) nums_at = -1;
  if (text_at < 0 || (size_t)text_at > text_cap || nums_at < 0 || (size_t)nums_at > nums_cap) {
    napi_throw_range_error(env, NULL, "offset out of range");
    return NULL;
  }

  names_t names = {0};
  int err;
  DIR *dir = read_sorted(path, 0, &names, &err);
  if (!dir) {
    throw_errno(env, err == NAMES_NO_MEMORY ? ENOMEM : err, "scandir", path, NULL);
    return NULL;
  }

  size_t text_need = names.arena_used; /* each name and a NUL: at least what the joined names take */
  size_t nums_need = names.count * NUMS;
  napi_value result;
  if ((size_t)text_at + text_need > text_cap || (size_t)nums_at + nums_need > nums_cap) {
    closedir(dir);
    names_free(&names);
    napi_value v;
    napi_create_array_with_length(env, 3, &result);
    napi_create_int32(env, -1, &v);
    napi_set_element(env, result, 0, v);
    napi_create_double(env, (double)text_need, &v);
    napi_set_element(env, result, 1, v);
    napi_create_double(env, (double)nums_need, &v);
    napi_set_element(env, result, 2, v);
    return result;
  }

  int dfd = dirfd(dir);
  unsigned char *text = (unsigned char *)text_data;
  double *nums = (double *)nums_data;
  size_t t = (size_t)text_at, o = (size_t)nums_at;
  napi_value subdirs = NULL, temps = NULL, undecodable = NULL;
  uint32_t subdir_count = 0, temp_count = 0, undecodable_count = 0;
  int kept = 0;
  for (size_t i = 0; i < names.count; i++) {
    const char *name = names.names[i].p;
    size_t len = names.names[i].len;
    if (is_temp(name, len)) {
      push_string(env, &temps, &temp_count, name, len);
      continue;
    }
    if (!is_utf8((const unsigned char *)name, len)) {
      push_string(env, &undecodable, &undecodable_count, name, len);
      continue;
    }
    int kind = stat_into(dfd, name, nums + o);
    if (kind == -1) continue; /* gone since the folder was read */
    if (kind == -2) {
      err = errno;
      closedir(dir);
      throw_errno(env, err, "lstat", path, name);
      names_free(&names);
      return NULL;
    }
    o += NUMS;
    if (kept++ > 0) text[t++] = 0;
    memcpy(text + t, name, len);
    t += len;
    if (kind == KIND_DIR) push_string(env, &subdirs, &subdir_count, name, len);
  }
  closedir(dir);
  names_free(&names);

  napi_value v, undef;
  napi_get_undefined(env, &undef);
  napi_create_array_with_length(env, 5, &result);
  napi_create_double(env, (double)t, &v);
  napi_set_element(env, result, 0, v);
  napi_create_double(env, (double)o, &v);
  napi_set_element(env, result, 1, v);
  napi_set_element(env, result, 2, subdirs ? subdirs : undef);
  napi_set_element(env, result, 3, temps ? temps : undef);
  napi_set_element(env, result, 4, undecodable ? undecodable : undef);
  return result;
}


/*
 * The walker: a thread of its own lists a whole tree, depth first in `byName` order, into batches
 * shaped as the listing threads' (`PackedBatch` in src/lister.ts), which the main thread takes.
 *
 * Perf: a Node listing thread costs ~50 ms of CPU to start (an environment of its own) and some
 * JavaScript per folder, on a pass that is CPU-bound on two cores; this thread costs neither. It
 * does not match patterns: it lists every folder but those named in `skip` (plain-name patterns),
 * and the walk takes those it needs (`NativeWalkLister` is used only when every pattern is a plain
 * name). It never calls into Node: the main thread takes its
 * batches (`walkNext`), so nothing here depends on Node's life, and a thread still listing when
 * the process exits just ends with it.
 */
#include <pthread.h>
#include <time.h>

/* Grows `*p` (of `*cap` elements of `size` bytes) to hold at least `need`. */
static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * size);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

/* A folder with temporary files, undecodable names, or an error (as `ListingExtra`). */
typedef struct {
  int32_t at;
  char *temps; /* names, each ending with NUL */
  size_t temps_len, temps_cap;
  uint32_t temp_count;
  char *undecodable;
  size_t undecodable_len, undecodable_cap;
  uint32_t undecodable_count;
  int err; /* 0, or the errno the folder could not be listed with */
  char *message;
} extra_t;

typedef struct batch {
  unsigned char *text;
  size_t text_len, text_cap;
  double *nums;
  size_t nums_len, nums_cap;
  int32_t *ends;
  size_t ends_len, ends_cap;
  extra_t *extras;
  size_t extras_len, extras_cap;
  int64_t entries; /* names and folders, as the listing thread counts them */
  struct batch *next;
} batch_t;

static void extra_free(extra_t *x) {
  free(x->temps);
  free(x->undecodable);
  free(x->message);
}

static void batch_free(batch_t *b) {
  if (!b) return;
  for (size_t i = 0; i < b->extras_len; i++) extra_free(&b->extras[i]);
  free(b->extras);
  free(b->text);
  free(b->nums);
  free(b->ends);
  free(b);
}

/* Frees `b` and the batches posted after it. */
static void batches_free(batch_t *b) {
  while (b) {
    batch_t *next = b->next;
    batch_free(b);
    b = next;
  }
}

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t ready; /* a batch was posted, or the walk is done */
  pthread_cond_t room;  /* the walk took some, the lead changed, or the walker must stop */
  batch_t *head, *tail; /* posted, not yet taken */
  int64_t posted, taken, ahead;
  int done, stop, refs;
  int fatal; /* errno of a failure of the walker itself (memory) */
  size_t batch_entries;
  char *root;
  /* Names of folders not to descend into, at any depth (excluded by plain-name patterns). */
  char **skip;
  size_t skip_count;
} walker_t;

static void strings_free(char **strings, size_t count) {
  for (size_t i = 0; i < count; i++) free(strings[i]);
  free(strings);
}

static int skipped(const walker_t *w, const char *name, size_t len) {
  for (size_t i = 0; i < w->skip_count; i++)
    if (strlen(w->skip[i]) == len && memcmp(w->skip[i], name, len) == 0) return 1;
  return 0;
}

static void walker_unref(walker_t *w) {
  pthread_mutex_lock(&w->lock);
  int last = --w->refs == 0;
  pthread_mutex_unlock(&w->lock);
  if (!last) return;
  batches_free(w->head);
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->ready);
  pthread_cond_destroy(&w->room);
  free(w->root);
  strings_free(w->skip, w->skip_count);
  free(w);
}

/* The extra of the folder being added (the batch's last, made if need be). */
static extra_t *extra_of(batch_t *b, int32_t at) {
  if (b->extras_len > 0 && b->extras[b->extras_len - 1].at == at) return &b->extras[b->extras_len - 1];
  if (grow((void **)&b->extras, &b->extras_cap, b->extras_len + 1, sizeof(extra_t))) return NULL;
  extra_t *x = &b->extras[b->extras_len++];
  memset(x, 0, sizeof *x);
  x->at = at;
  return x;
}

static int add_name(char **p, size_t *len, size_t *cap, uint32_t *count, const char *name, size_t n) {
  if (grow((void **)p, cap, *len + n + 1, 1)) return -1;
  memcpy(*p + *len, name, n + 1);
  *len += n + 1;
  (*count)++;
  return 0;
}

/* Ends folder `at`: its path ends at `dir_end` in the text, its names and numbers where they are now. */
static int end_folder(batch_t *b, int32_t dir_end, int64_t kept) {
  if (grow((void **)&b->ends, &b->ends_cap, b->ends_len + 3, sizeof(int32_t))) return -1;
  b->ends[b->ends_len++] = dir_end;
  b->ends[b->ends_len++] = (int32_t)b->text_len;
  b->ends[b->ends_len++] = (int32_t)b->nums_len;
  b->entries += kept + 1;
  return 0;
}

/* Folder `at` could not be listed: it ends with no names and the error, as `unreadable` does. */
static int unreadable_folder(batch_t *b, int32_t at, int32_t dir_end, size_t nums_start, int err, const char *syscall, const char *path, const char *name) {
  b->text_len = (size_t)dir_end;
  b->nums_len = nums_start;
  extra_t *x = extra_of(b, at);
  if (!x) return -1;
  /* Temporary and undecodable names met before the error are dropped, as the listing thread's are. */
  free(x->temps);
  free(x->undecodable);
  x->temps = x->undecodable = NULL;
  x->temps_len = x->temps_cap = x->undecodable_len = x->undecodable_cap = 0;
  x->temp_count = x->undecodable_count = 0;
  char message[8192];
  format_errno(message, sizeof message, err, syscall, path, name);
  x->err = err;
  x->message = strdup(message);
  if (!x->message) return -1;
  return end_folder(b, dir_end, 0);
}

typedef struct {
  char **items;
  size_t len, cap;
} stack_t_;

/* Lists folder `rel` into `b`, and pushes its subfolders on `stack` (the first one last). -1: no memory. */
static int walk_folder(walker_t *w, batch_t *b, const char *rel, stack_t_ *stack) {
  size_t rel_len = strlen(rel);
  int32_t at = (int32_t)(b->ends_len / 3);
  if (rel_len > 0) {
    if (grow((void **)&b->text, &b->text_cap, b->text_len + rel_len, 1)) return -1;
    memcpy(b->text + b->text_len, rel, rel_len);
    b->text_len += rel_len;
  }
  int32_t dir_end = (int32_t)b->text_len;
  size_t nums_start = b->nums_len;

  char path[4096 + 1];
  size_t root_len = strlen(w->root);
  if (root_len + 1 + rel_len >= sizeof path) {
    snprintf(path, sizeof path, "%s/%s", w->root, rel);
    return unreadable_folder(b, at, dir_end, nums_start, ENAMETOOLONG, "scandir", path, NULL);
  }
  memcpy(path, w->root, root_len);
  if (rel_len > 0) {
    path[root_len] = '/';
    memcpy(path + root_len + 1, rel, rel_len + 1);
  } else {
    path[root_len] = 0;
  }

  names_t names = {0};
  int err;
  /* Safety: a subfolder is not followed if it became a link since its parent was listed (the
     walker may be held back a while): it fails with ELOOP, and the walk reports it. */
  DIR *dir = read_sorted(path, rel_len > 0 ? O_NOFOLLOW : 0, &names, &err);
  if (!dir) {
    /* Only our own allocation ends the walk; the kernel's ENOMEM (open, readdir) is this folder's error, as in Node. */
    if (err == NAMES_NO_MEMORY) return -1;
    return unreadable_folder(b, at, dir_end, nums_start, err, "scandir", path, NULL);
  }
  int rc = 0;
  size_t *subdirs = NULL, subdir_count = 0, subdir_cap = 0;
  if (grow((void **)&b->nums, &b->nums_cap, b->nums_len + names.count * NUMS, sizeof(double)) ||
      grow((void **)&b->text, &b->text_cap, b->text_len + names.arena_used, 1)) {
    rc = -1;
    goto out;
  }
  int dfd = dirfd(dir);
  int64_t kept = 0;
  for (size_t i = 0; i < names.count; i++) {
    const char *name = names.names[i].p;
    size_t len = names.names[i].len;
    if (is_temp(name, len) || !is_utf8((const unsigned char *)name, len)) {
      extra_t *x = extra_of(b, at);
      int temp = is_temp(name, len);
      if (!x || (temp ? add_name(&x->temps, &x->temps_len, &x->temps_cap, &x->temp_count, name, len)
                      : add_name(&x->undecodable, &x->undecodable_len, &x->undecodable_cap, &x->undecodable_count, name, len))) {
        rc = -1;
        goto out;
      }
      continue;
    }
    int kind = stat_into(dfd, name, b->nums + b->nums_len);
    if (kind == -1) continue; /* gone since the folder was read */
    if (kind == -2) {
      subdir_count = 0;
      rc = unreadable_folder(b, at, dir_end, nums_start, errno, "lstat", path, name);
      goto out;
    }
    b->nums_len += NUMS;
    if (kept++ > 0) b->text[b->text_len++] = 0;
    memcpy(b->text + b->text_len, name, len);
    b->text_len += len;
    if (kind == KIND_DIR && !skipped(w, name, len)) {
      if (grow((void **)&subdirs, &subdir_cap, subdir_count + 1, sizeof(size_t))) {
        rc = -1;
        goto out;
      }
      subdirs[subdir_count++] = i;
    }
  }
  if (b->text_len > INT32_MAX || b->nums_len > INT32_MAX) {
    /* Past what the batch's ends (int32) can say: one folder of tens of millions of names. */
    subdir_count = 0;
    rc = unreadable_folder(b, at, dir_end, nums_start, EOVERFLOW, "scandir", path, NULL);
    goto out;
  }
  rc = end_folder(b, dir_end, kept);
  if (rc == 0 && grow((void **)&stack->items, &stack->cap, stack->len + subdir_count, sizeof(char *))) rc = -1;
  for (size_t k = subdir_count; rc == 0 && k-- > 0;) {
    const name_t *n = &names.names[subdirs[k]];
    char *child = malloc(rel_len + 1 + n->len + 1);
    if (!child) {
      rc = -1;
      break;
    }
    if (rel_len > 0) {
      memcpy(child, rel, rel_len);
      child[rel_len] = '/';
      memcpy(child + rel_len + 1, n->p, n->len + 1);
    } else {
      memcpy(child, n->p, n->len + 1);
    }
    stack->items[stack->len++] = child;
  }
out:
  free(subdirs);
  closedir(dir);
  names_free(&names);
  return rc;
}

/* Hands `b` to the main thread, then waits while the walker is too far ahead. Returns whether to stop. */
static int post(walker_t *w, batch_t *b) {
  pthread_mutex_lock(&w->lock);
  if (w->stop) {
    /* Stopped meanwhile: nothing more is taken (`walkStop` dropped what was posted). */
    pthread_mutex_unlock(&w->lock);
    batch_free(b);
    return 1;
  }
  b->next = NULL;
  if (w->tail) w->tail->next = b;
  else w->head = b;
  w->tail = b;
  w->posted += b->entries;
  pthread_cond_signal(&w->ready);
  while (!w->stop && w->posted - w->taken > w->ahead) pthread_cond_wait(&w->room, &w->lock);
  int stop = w->stop;
  pthread_mutex_unlock(&w->lock);
  return stop;
}

static batch_t *batch_new(void) {
  return calloc(1, sizeof(batch_t));
}

static void *walker_main(void *arg) {
  walker_t *w = arg;
  stack_t_ stack = {0};
  batch_t *b = batch_new();
  int fatal = 0;
  char *top = strdup("");
  if (!b || !top || grow((void **)&stack.items, &stack.cap, 1, sizeof(char *))) {
    fatal = ENOMEM;
    free(top);
  } else {
    stack.items[stack.len++] = top;
  }
  while (!fatal && stack.len > 0) {
    if (__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) break;
    char *rel = stack.items[--stack.len];
    int rc = walk_folder(w, b, rel, &stack);
    free(rel);
    if (rc != 0) {
      fatal = ENOMEM;
      break;
    }
    if (b->entries >= (int64_t)w->batch_entries) {
      if (post(w, b)) {
        b = NULL;
        break;
      }
      b = batch_new();
      if (!b) fatal = ENOMEM;
    }
  }
  if (b && !fatal && b->ends_len > 0) {
    post(w, b); /* (frees it if stopped) */
    b = NULL;
  }
  batch_free(b);
  while (stack.len > 0) free(stack.items[--stack.len]);
  free(stack.items);
  pthread_mutex_lock(&w->lock);
  w->done = 1;
  w->fatal = fatal;
  pthread_cond_signal(&w->ready);
  pthread_mutex_unlock(&w->lock);
  walker_unref(w);
  return NULL;
}

/* Tells the walker to stop at its next folder (or at once, if it waits for room); returns what
   it had posted and the main thread not taken, which is the caller's now. */
static batch_t *request_stop(walker_t *w) {
  pthread_mutex_lock(&w->lock);
  __atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED); /* (the walker also reads it unlocked) */
  pthread_cond_signal(&w->room);
  batch_t *posted = w->head;
  w->head = w->tail = NULL;
  pthread_mutex_unlock(&w->lock);
  return posted;
}

/* The main thread's reference is gone: the walker stops (and is freed once its thread has ended). */
static void walker_finalize(napi_env env, void *data, void *hint) {
  walker_t *w = data;
  batches_free(request_stop(w));
  walker_unref(w);
}

static int64_t int64_arg(napi_env env, napi_value value) {
  int64_t n = -1;
  if (napi_get_value_int64(env, value, &n) != napi_ok) return -1;
  return n;
}

/*
 * The walker a `walk…` call is made on (its first argument), and its second argument, a number,
 * into `*number` unless `number` is NULL (-1 if it is not an integer); NULL, with an exception
 * thrown, if an argument is missing or the first is not a walker.
 */
static walker_t *walker_call(napi_env env, napi_callback_info info, int64_t *number) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < (number ? 2u : 1u) || napi_get_value_external(env, argv[0], &data) != napi_ok || !data) {
    napi_throw_type_error(env, NULL, "expected a walker (and a number)");
    return NULL;
  }
  if (number) *number = int64_arg(env, argv[1]);
  return data;
}

/*
 * The strings of array `value` (each without a NUL), into `*out` (`*count` of them); -1 if it is
 * not such an array (or memory ran out).
 */
static int strings_in(napi_env env, napi_value value, char ***out, size_t *count) {
  bool is_array = false;
  uint32_t length = 0;
  *out = NULL;
  *count = 0;
  if (napi_is_array(env, value, &is_array) != napi_ok || !is_array || napi_get_array_length(env, value, &length) != napi_ok) return -1;
  char **items = calloc(length ? length : 1, sizeof(char *));
  if (!items) return -1;
  for (uint32_t i = 0; i < length; i++) {
    napi_value item;
    size_t len;
    if (napi_get_element(env, value, i, &item) != napi_ok || napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok ||
        !(items[i] = malloc(len + 1))) {
      strings_free(items, i);
      return -1;
    }
    napi_get_value_string_utf8(env, item, items[i], len + 1, NULL);
    if (strlen(items[i]) != len) {
      strings_free(items, i + 1);
      return -1;
    }
  }
  *out = items;
  *count = length;
  return 0;
}

/*
 * walkStart(root, batchEntries, ahead, skip): starts the walker on `root` (absolute), posting a
 * batch whenever it holds `batchEntries` entries, and waiting while it is more than `ahead`
 * entries ahead of what the main thread took (see `walkCredit`). Folders named as one of `skip`
 * (an array of names) are listed in their parent but not descended into. Returns the walker, for
 * the calls below; it stops when `walkStop` is called or it is collected.
 */
static napi_value walk_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t root_len;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &root_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "walkStart(root, batchEntries, ahead, skip)");
    return NULL;
  }
  int64_t batch_entries = int64_arg(env, argv[1]), ahead = int64_arg(env, argv[2]);
  if (batch_entries < 1 || ahead < 0) {
    napi_throw_range_error(env, NULL, "batchEntries must be at least 1 and ahead at least 0");
    return NULL;
  }
  walker_t *w = calloc(1, sizeof(walker_t));
  char *root = malloc(root_len + 1);
  if (!w || !root) {
    free(w);
    free(root);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], root, root_len + 1, NULL);
  if (strlen(root) != root_len) {
    free(w);
    free(root);
    napi_throw_type_error(env, NULL, "root must not contain a NUL");
    return NULL;
  }
  if (strings_in(env, argv[3], &w->skip, &w->skip_count) != 0) {
    free(w);
    free(root);
    napi_throw_type_error(env, NULL, "skip must be an array of names");
    return NULL;
  }
  w->root = root;
  w->batch_entries = (size_t)batch_entries;
  w->ahead = ahead;
  w->refs = 2;
  pthread_mutex_init(&w->lock, NULL);
  /* `walkNext` waits on `ready` with a timeout: by the monotonic clock, which no clock change moves. */
  pthread_condattr_t cond_attr;
  pthread_condattr_init(&cond_attr);
  pthread_condattr_setclock(&cond_attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->ready, &cond_attr);
  pthread_condattr_destroy(&cond_attr);
  pthread_cond_init(&w->room, NULL);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, walker_main, w);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    throw_errno(env, err, "pthread_create", root, NULL); /* before `root` goes with the walker */
    w->refs = 1;
    walker_unref(w);
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, w, walker_finalize, NULL, &handle) != napi_ok) {
    walker_finalize(env, w, NULL);
    napi_throw_error(env, NULL, "cannot make the walker's handle");
    return NULL;
  }
  return handle;
}

static napi_value strings_of(napi_env env, const char *p, uint32_t count) {
  napi_value array, value;
  napi_create_array_with_length(env, count, &array);
  for (uint32_t i = 0; i < count; i++) {
    size_t len = strlen(p);
    napi_create_string_utf8(env, p, len, &value);
    napi_set_element(env, array, i, value);
    p += len + 1;
  }
  return array;
}

/* A typed array of `count` elements of `size` bytes, a copy of `data`, as `result`'s `key`. */
static int copy_out(napi_env env, napi_value result, const char *key, napi_typedarray_type type, const void *data, size_t count, size_t size) {
  napi_value ab, view;
  void *to;
  if (napi_create_arraybuffer(env, count * size, &to, &ab) != napi_ok) return -1;
  if (count > 0) memcpy(to, data, count * size);
  if (napi_create_typedarray(env, type, count, ab, 0, &view) != napi_ok) return -1;
  return napi_set_named_property(env, result, key, view) == napi_ok ? 0 : -1;
}

/* `b` as a `PackedBatch`: {text, nums, ends, extras}, copied into the main thread's memory; NULL
   if Node could not allocate it (an exception is then pending). */
static napi_value batch_value(napi_env env, batch_t *b) {
  napi_value result, array, value;
  if (napi_create_object(env, &result) != napi_ok ||
      copy_out(env, result, "text", napi_uint8_array, b->text, b->text_len, 1) ||
      copy_out(env, result, "nums", napi_float64_array, b->nums, b->nums_len, sizeof(double)) ||
      copy_out(env, result, "ends", napi_int32_array, b->ends, b->ends_len, sizeof(int32_t)) ||
      napi_create_array_with_length(env, b->extras_len, &array) != napi_ok)
    return NULL;
  for (size_t i = 0; i < b->extras_len; i++) {
    extra_t *x = &b->extras[i];
    napi_value extra;
    napi_create_object(env, &extra);
    napi_create_int32(env, x->at, &value);
    napi_set_named_property(env, extra, "at", value);
    napi_set_named_property(env, extra, "temps", strings_of(env, x->temps, x->temp_count));
    napi_set_named_property(env, extra, "undecodable", strings_of(env, x->undecodable, x->undecodable_count));
    if (x->err) {
      napi_value error;
      napi_create_object(env, &error);
      napi_create_string_utf8(env, uv_err_name(-x->err), NAPI_AUTO_LENGTH, &value);
      napi_set_named_property(env, error, "code", value);
      napi_create_string_utf8(env, x->message, NAPI_AUTO_LENGTH, &value);
      napi_set_named_property(env, error, "message", value);
      napi_set_named_property(env, extra, "error", error);
    }
    napi_set_element(env, array, (uint32_t)i, extra);
  }
  napi_set_named_property(env, result, "extras", array);
  return result;
}

/*
 * walkNext(walker, waitMs): the next batch posted, waiting up to `waitMs` for one; or true once
 * the walk is done and every batch taken; or the walker's own failure, as a message; or undefined
 * if none came in time.
 */
static napi_value walk_next(napi_env env, napi_callback_info info) {
  int64_t wait_ms;
  walker_t *w = walker_call(env, info, &wait_ms);
  if (!w) return NULL;
  pthread_mutex_lock(&w->lock);
  if (!w->head && !w->done && wait_ms > 0) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    while (!w->head && !w->done) {
      if (pthread_cond_timedwait(&w->ready, &w->lock, &until) == ETIMEDOUT) break;
    }
  }
  batch_t *b = w->head;
  if (b) {
    w->head = b->next;
    if (!w->head) w->tail = NULL;
  }
  int done = w->done, fatal = w->fatal;
  pthread_mutex_unlock(&w->lock);
  napi_value result;
  if (b) {
    result = batch_value(env, b);
    batch_free(b);
    if (!result) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (!pending) napi_throw_error(env, NULL, "out of memory taking a batch of listings");
      return NULL;
    }
  } else if (done && fatal) {
    napi_create_string_utf8(env, uv_strerror(-fatal), NAPI_AUTO_LENGTH, &result);
  } else if (done) {
    napi_get_boolean(env, true, &result);
  } else {
    napi_get_undefined(env, &result);
  }
  return result;
}

/* walkCredit(walker, taken): the main thread has taken (or let go of) `taken` entries in all. */
static napi_value walk_credit(napi_env env, napi_callback_info info) {
  int64_t taken;
  walker_t *w = walker_call(env, info, &taken);
  if (!w) return NULL;
  pthread_mutex_lock(&w->lock);
  if (taken > w->taken) w->taken = taken;
  if (w->posted - w->taken <= w->ahead) pthread_cond_signal(&w->room);
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* walkAhead(walker, ahead): the walker may now be up to `ahead` entries ahead. */
static napi_value walk_ahead(napi_env env, napi_callback_info info) {
  int64_t ahead;
  walker_t *w = walker_call(env, info, &ahead);
  if (!w) return NULL;
  pthread_mutex_lock(&w->lock);
  if (ahead >= 0) w->ahead = ahead;
  pthread_cond_signal(&w->room);
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* walkStop(walker): the walker stops at its next folder; what it posted is dropped. */
static napi_value walk_stop(napi_env env, napi_callback_info info) {
  walker_t *w = walker_call(env, info, NULL);
  if (w) batches_free(request_stop(w));
  return NULL;
}

/* Queues `execute` (on libuv's thread pool), then `complete`, with `data`, as work named `name`; false if it could not (nothing queued). */
static bool queue_work(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data, napi_async_work *work) {
  napi_value resource;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, execute, complete, data, work) != napi_ok) return false;
  if (napi_queue_async_work(env, *work) == napi_ok) return true;
  napi_delete_async_work(env, *work);
  return false;
}

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

static napi_value sync_fs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise;
  int32_t fd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "syncFs(fd)");
    return NULL;
  }
  syncfs_t *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
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
 * fingerprint the walk saw (numbers 5..10: size, mtime s/ns, ctime s/ns, inode); then its
 * permission bits set to number 0 (unless it is negative), its atime and mtime to numbers 1..4
 * (seconds, nanoseconds: kept to the microsecond, as Node's utimes does); then its lstat written
 * into nums from i*NUMS, as `list` writes an entry's. A promise of undefined when every path went
 * through, else of an array holding, at the index of each that failed, the Error Node's fs would
 * have thrown (syscall lstat, chmod or utime), or for a file that changed since the walk an Error
 * with code ECHANGED; the steps after a failed one are not made. `input` and `nums` are held
 * until it settles.
 *
 * Safety: the record made from the lstat after the fix vouches for the content the walk read (or
 * the cache vouched for); a file rewritten since (at the same size) would have been vouched for
 * unread. The check leaves a window of microseconds, not the whole walk.
 *
 * Perf: a pass that found 100k files' mtimes touched made these three calls for each on the main
 * thread, ~9 us a file (~0.9 s), after the hashing and while the other core sat idle; now the main
 * thread only records and logs (`applyMetas` in src/pass.ts).
 */
#define META_INPUTS 11
enum { META_OK, META_CHMOD, META_UTIME, META_LSTAT, META_CHANGED };

/* Whether `st` has the fingerprint in `expected`: size, mtime s/ns, ctime s/ns, inode (as `fill_nums` gives them). */
static int same_fingerprint(const struct stat *st, const double *expected) {
  double now[NUMS];
  fill_nums(st, now);
  return now[1] == expected[0] && now[3] == expected[1] && now[4] == expected[2] && now[5] == expected[3] && now[6] == expected[4] && now[9] == expected[5];
}

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
 * A time as utimensat takes it, to the microsecond (see `fixMetas`): nanoseconds in 0..999999999,
 * so a time before 1970 given as (-100 s, -0.25 s) goes as (-101 s, +0.75 s), as libuv sends it.
 */
static struct timespec meta_time(double seconds, double nanoseconds) {
  struct timespec t;
  long long s = (long long)seconds;
  long long ns = (long long)nanoseconds;
  s += ns / 1000000000;
  ns %= 1000000000;
  if (ns < 0) {
    ns += 1000000000;
    s -= 1;
  }
  t.tv_sec = (time_t)s;
  t.tv_nsec = (long)(ns - ns % 1000);
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
    else if (in[0] >= 0 && chmod(path, (mode_t)in[0]) != 0) step = META_CHMOD;
    else if (utimensat(AT_FDCWD, path, times, 0) != 0) step = META_UTIME;
    else if (lstat(path, &st) != 0) step = META_LSTAT;
    if (step == META_OK) {
      fill_nums(&st, m->nums + i * NUMS);
    } else {
      m->errs[i] = errno;
      m->steps[i] = step;
      m->failed++;
    }
  }
}

/* The error of a file that changed since the walk: code ECHANGED (not an errno). */
static napi_value changed_error(napi_env env, const char *path) {
  char message[8192];
  napi_value error, code, text;
  snprintf(message, sizeof message, "ECHANGED: changed since the walk saw it, '%s'", path);
  napi_create_string_utf8(env, "ECHANGED", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  return error;
}

static void metas_complete(napi_env env, napi_status status, void *data) {
  static const char *const syscalls[] = {"", "chmod", "utime", "lstat", ""};
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

/* The data of typed array `value` if it is of `type` with at least `count` elements, else NULL. */
static void *typed_data(napi_env env, napi_value value, napi_typedarray_type type, size_t count) {
  bool is_typed = false;
  napi_typedarray_type actual;
  size_t length;
  void *data;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return NULL;
  if (napi_get_typedarray_info(env, value, &actual, &length, &data, NULL, NULL) != napi_ok) return NULL;
  return actual == type && length >= count && data ? data : NULL;
}

static napi_value fix_metas(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], promise;
  uint32_t count = 0;
  bool is_array = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &count) != napi_ok) {
    napi_throw_type_error(env, NULL, "fixMetas(paths, input, nums)");
    return NULL;
  }
  metas_t *m = calloc(1, sizeof *m);
  if (!m) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  m->count = count;
  m->input = typed_data(env, argv[1], napi_float64_array, (size_t)count * META_INPUTS);
  m->nums = typed_data(env, argv[2], napi_float64_array, (size_t)count * NUMS);
  m->offsets = malloc((count ? count : 1) * sizeof *m->offsets);
  m->errs = calloc(count ? count : 1, sizeof *m->errs);
  m->steps = calloc(count ? count : 1, 1);
  if (count > 0 && (!m->input || !m->nums)) {
    metas_free(env, m);
    napi_throw_type_error(env, NULL, "fixMetas: input needs 11 numbers a path, nums 10 (Float64Array)");
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
    size_t len = 0;
    if (napi_get_element(env, argv[0], i, &item) != napi_ok || napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok) {
      metas_free(env, m);
      napi_throw_type_error(env, NULL, "fixMetas: paths must be strings");
      return NULL;
    }
    if (grow((void **)&m->paths, &cap, used + len + 1, 1) != 0) {
      metas_free(env, m);
      napi_throw_error(env, NULL, "out of memory");
      return NULL;
    }
    napi_get_value_string_utf8(env, item, m->paths + used, len + 1, &len);
    m->offsets[i] = used;
    used += len + 1;
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
#if __has_include(<openssl/evp.h>)
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
static char *string_arg(napi_env env, napi_value value) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s) napi_get_value_string_utf8(env, value, s, len + 1, &len);
  return s;
}

static napi_value copy_to_temp(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], promise;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  copy_t *c = calloc(1, sizeof *c);
  if (!c) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  if (argc < 5 || !(c->source = string_arg(env, argv[0])) || !(c->temp = string_arg(env, argv[1])) ||
      !(c->nums = typed_data(env, argv[2], napi_float64_array, NUMS)) || !(c->md5 = typed_data(env, argv[3], napi_uint8_array, 16)) ||
      napi_get_value_double(env, argv[4], &c->max_bytes) != napi_ok) {
    copy_free(env, c);
    napi_throw_type_error(env, NULL, "copyToTemp(source, temp, nums: Float64Array(10), md5: Uint8Array(16), maxBytes)");
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
#define HAVE_COPY_TO_TEMP 1
#endif

/* Must match NATIVE_VERSION in src/native.ts: raised whenever `list` changes what it takes or answers (or a function is added). */
#define FSWALK_VERSION 8

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn, version;
  const struct { const char *name; napi_callback cb; } fns[] = {
    {"list", list}, {"walkStart", walk_start}, {"walkNext", walk_next}, {"walkCredit", walk_credit}, {"walkAhead", walk_ahead}, {"walkStop", walk_stop}, {"syncFs", sync_fs}, {"fixMetas", fix_metas},
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
