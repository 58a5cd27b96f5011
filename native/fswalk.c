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
 * The module keeps no state: it is loaded in each listing thread.
 */
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

/* Throws an Error as Node's fs would: "<CODE>: <description>, <syscall> '<path>'", with .code. */
static void throw_errno(napi_env env, int err, const char *syscall, const char *path, const char *name) {
  char message[8192];
  const char *code = uv_err_name(-err);
  if (name)
    snprintf(message, sizeof message, "%s: %s, %s '%s/%s'", code, uv_strerror(-err), syscall, path, name);
  else
    snprintf(message, sizeof message, "%s: %s, %s '%s'", code, uv_strerror(-err), syscall, path);
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
  napi_throw(env, error);
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

  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw_errno(env, errno, "scandir", path, NULL);
    return NULL;
  }
  DIR *dir = fdopendir(fd);
  if (!dir) {
    int err = errno;
    close(fd);
    throw_errno(env, err, "scandir", path, NULL);
    return NULL;
  }
  names_t names = {0};
  struct dirent *e;
  for (;;) {
    errno = 0;
    e = readdir(dir);
    if (!e) break;
    const char *n = e->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    if (names_add(&names, n, strlen(n)) != 0) {
      closedir(dir);
      names_free(&names);
      throw_errno(env, ENOMEM, "scandir", path, NULL);
      return NULL;
    }
  }
  if (errno != 0) {
    int err = errno;
    closedir(dir);
    names_free(&names);
    throw_errno(env, err, "scandir", path, NULL);
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

  for (size_t i = 0; i < names.count; i++) names.names[i].p = names.arena + names.names[i].at;
  if (names.count > 1) qsort(names.names, names.count, sizeof(name_t), by_name);

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
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) continue; /* gone since the folder was read */
      closedir(dir);
      throw_errno(env, err, "lstat", path, name);
      names_free(&names);
      return NULL;
    }
    int kind = kind_of(st.st_mode);
    nums[o] = kind;
    nums[o + 1] = (double)st.st_size;
    nums[o + 2] = st.st_mode & 07777;
    nums[o + 3] = (double)st.st_mtim.tv_sec;
    nums[o + 4] = (double)st.st_mtim.tv_nsec;
    nums[o + 5] = (double)st.st_ctim.tv_sec;
    nums[o + 6] = (double)st.st_ctim.tv_nsec;
    nums[o + 7] = (double)st.st_atim.tv_sec;
    nums[o + 8] = (double)st.st_atim.tv_nsec;
    nums[o + 9] = (double)st.st_ino;
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

/* Must match NATIVE_VERSION in src/native.ts: raised whenever `list` changes what it takes or answers. */
#define FSWALK_VERSION 1

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn, version;
  napi_create_function(env, "list", NAPI_AUTO_LENGTH, list, NULL, &fn);
  napi_set_named_property(env, exports, "list", fn);
  napi_create_int32(env, FSWALK_VERSION, &version);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}
