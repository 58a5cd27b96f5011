/*
 * The helpers the addon's jobs share: reading a folder's names in `byName` order, an entry's lstat
 * as NUMS numbers, the checks on names (ours, UTF-8), errors as Node's fs makes them, typed-array
 * arguments, and queueing work on libuv's thread pool.
 */
#include "fswalk.h"

void names_free(names_t *n) {
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

int is_temp(const char *s, size_t len) {
  if (len != TEMP_LEN || memcmp(s, TEMP_PREFIX, TEMP_PREFIX_LEN) != 0) return 0;
  for (size_t i = TEMP_PREFIX_LEN; i < TEMP_PREFIX_LEN + 16; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
  }
  return memcmp(s + TEMP_PREFIX_LEN + 16, ".tmp", 4) == 0;
}

/* Whether `s` is valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
int is_utf8(const unsigned char *s, size_t len) {
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
void format_errno(char *message, size_t size, int err, const char *syscall, const char *path, const char *name) {
  const char *code = uv_err_name(-err);
  if (!path)
    snprintf(message, size, "%s: %s, %s", code, uv_strerror(-err), syscall);
  else if (name)
    snprintf(message, size, "%s: %s, %s '%s/%s'", code, uv_strerror(-err), syscall, path, name);
  else
    snprintf(message, size, "%s: %s, %s '%s'", code, uv_strerror(-err), syscall, path);
}

/* An Error as Node's fs makes one (see `format_errno`), with .code, .errno and .syscall. */
napi_value errno_error(napi_env env, int err, const char *syscall, const char *path, const char *name) {
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
void throw_errno(napi_env env, int err, const char *syscall, const char *path, const char *name) {
  napi_throw(env, errno_error(env, err, syscall, path, name));
}

/* The error of a file that changed since the walk: code ECHANGED (not an errno). */
napi_value changed_error(napi_env env, const char *path) {
  char message[8192];
  napi_value error, code, text;
  snprintf(message, sizeof message, "ECHANGED: changed since the walk saw it, '%s'", path);
  napi_create_string_utf8(env, "ECHANGED", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  return error;
}

/*
 * Opens folder `path` (with `flags` added to open's) and reads its names (but . and ..) into `names`, in `byName` order. Returns
 * the open folder, or NULL with `*err` set: the errno of the call that failed, or NAMES_NO_MEMORY.
 */
DIR *read_sorted(const char *path, int flags, names_t *names, int *err) {
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
int fill_nums(const struct stat *st, double *nums) {
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
  nums[10] = (double)st->st_uid;
  nums[11] = (double)st->st_gid;
  nums[12] = (double)st->st_nlink;
  nums[13] = (double)st->st_dev;
  return kind;
}

/* Whether `st` has the fingerprint in `expected`: size, mtime s/ns, ctime s/ns, inode (as `fill_nums` gives them). */
int same_fingerprint(const struct stat *st, const double *expected) {
  double now[NUMS];
  fill_nums(st, now);
  return now[1] == expected[0] && now[3] == expected[1] && now[4] == expected[2] && now[5] == expected[3] && now[6] == expected[4] && now[9] == expected[5];
}

/*
 * lstat of `name` in the open folder `dfd`, as NUMS numbers into `nums`: the entry's kind, or -1
 * if it is gone since the folder was read, or -2 with errno set if the lstat failed otherwise.
 */
int stat_into(int dfd, const char *name, double *nums) {
  struct stat st;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT || errno == ENOTDIR ? -1 : -2;
  return fill_nums(&st, nums);
}

/* Grows `*p` (of `*cap` elements of `size` bytes) to hold at least `need`. */
int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap * 2 : 64;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * size);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

/* The data of typed array `value` if it is of `type` with at least `count` elements, else NULL. */
void *typed_data(napi_env env, napi_value value, napi_typedarray_type type, size_t count) {
  bool is_typed = false;
  napi_typedarray_type actual;
  size_t length;
  void *data;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return NULL;
  if (napi_get_typedarray_info(env, value, &actual, &length, &data, NULL, NULL) != napi_ok) return NULL;
  return actual == type && length >= count && data ? data : NULL;
}

/* `size` bytes of zeros, or NULL with an Error "out of memory" thrown. */
void *calloc_or_throw(napi_env env, size_t size) {
  void *p = calloc(1, size);
  if (!p) napi_throw_error(env, NULL, "out of memory");
  return p;
}

/* Queues `execute` (on libuv's thread pool), then `complete`, with `data`, as work named `name`; false if it could not (nothing queued). */
bool queue_work(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data, napi_async_work *work) {
  napi_value resource;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, execute, complete, data, work) != napi_ok) return false;
  if (napi_queue_async_work(env, *work) == napi_ok) return true;
  napi_delete_async_work(env, *work);
  return false;
}

/*
 * Appends path `value` (a string, or a Buffer of a path's bytes: a name that is not UTF-8) and a
 * NUL to `*buf` (of `*cap` bytes, `*used` used): where it starts, or -1 if `value` is neither (or
 * holds a NUL), -2 out of memory.
 */
long append_path(napi_env env, napi_value value, char **buf, size_t *used, size_t *cap) {
  bool is_buffer = false;
  size_t len = 0;
  void *bytes = NULL;
  napi_is_buffer(env, value, &is_buffer);
  if (is_buffer) {
    if (napi_get_buffer_info(env, value, &bytes, &len) != napi_ok || memchr(bytes, 0, len) != NULL) return -1;
  } else if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    return -1;
  }
  if (grow((void **)buf, cap, *used + len + 1, 1) != 0) return -2;
  char *at = *buf + *used;
  if (is_buffer) {
    memcpy(at, bytes, len);
    at[len] = 0;
  } else {
    napi_get_value_string_utf8(env, value, at, len + 1, &len);
  }
  long start = (long)*used;
  *used += len + 1;
  return start;
}

/* A path argument (see `append_path`) as a new NUL-terminated string, or NULL (nothing thrown). */
char *path_arg(napi_env env, napi_value value) {
  char *buf = NULL;
  size_t used = 0, cap = 0;
  if (append_path(env, value, &buf, &used, &cap) < 0) {
    free(buf);
    return NULL;
  }
  return buf;
}

/*
 * A name (or folder path) as a listing's text carries it (`toTransport` in src/tree/names.ts): its
 * bytes when they are UTF-8, else `/` and the hex of its bytes (no name, and no relative path,
 * begins with `/`). Writes it at `out` (room for `transport_len` bytes); returns its length.
 */
size_t transport_len(const char *name, size_t len) {
  return is_utf8((const unsigned char *)name, len) ? len : 1 + 2 * len;
}

size_t write_transport(unsigned char *out, const char *name, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (is_utf8((const unsigned char *)name, len)) {
    memcpy(out, name, len);
    return len;
  }
  out[0] = '/';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    out[1 + 2 * i] = hex[c >> 4];
    out[2 + 2 * i] = hex[c & 15];
  }
  return 1 + 2 * len;
}
