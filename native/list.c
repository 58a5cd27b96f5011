/*
 * folder-sync's native listing: one call lists one folder, as the listing thread's JavaScript
 * (`listFolder` in src/lister-worker.ts) does with readdir and one lstat per name, and writes the
 * result straight into the thread's batch buffers: the names, UTF-8 and joined by NUL, into
 * `text`; NUMS numbers per entry into `nums`.
 *
 * Perf: the JavaScript does the same work at ~3.5 us of CPU per entry: a string per name, a path
 * per lstat, and the kernel walking that whole path again for each name. Here the names never
 * become strings (only subfolders and temporary files do) and each lstat is an
 * fstatat relative to the open folder, which the kernel resolves in one step: ~2.2 us per entry,
 * nearly all of it the kernel's (GNU `find` takes the same).
 *
 * `list` keeps no state: it is loaded in each listing thread. The walker (`walkStart`, in
 * walker.c) is the listing thread's work without the Node thread.
 */
#include "fswalk.h"

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
 * permissions, mtime s and ns, ctime s and ns, atime s and ns, inode, uid, gid, links, device), and returns
 * [textEnd, numsEnd, subfolders, temps, escaped]: the names of the entries that are folders, in
 * order; the names of our temporary files, left out of the listing (each array is undefined when
 * empty); and whether a name is not UTF-8 (it is listed in its transport form, see
 * `write_transport`, and so is a subfolder's name). An entry gone since the folder was read is
 * left out. `path` is a string or a Buffer of its bytes. If `text` or `nums` lacks room, nothing is written and it returns [-1, text bytes
 * needed, numbers needed]. Throws as Node's fs does if the folder cannot be read or an lstat
 * fails for a reason other than the entry being gone.
 */
static napi_value list_path(napi_env env, const char *path, napi_value *argv);

napi_value list(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "list(path, text, textAt, nums, numsAt)");
    return NULL;
  }
  /* A string, or a Buffer of its bytes (a path with names that are not UTF-8). */
  char *path = path_arg(env, argv[0]);
  if (!path) {
    napi_throw_type_error(env, NULL, "path must be a string or a Buffer, without a NUL");
    return NULL;
  }
  if (strlen(path) >= 4096) {
    throw_errno(env, ENAMETOOLONG, "scandir", path, NULL);
    free(path);
    return NULL;
  }
  napi_value result = list_path(env, path, argv);
  free(path);
  return result;
}

/* `list` of `path` (see above; `argv` as given). */
static napi_value list_path(napi_env env, const char *path, napi_value *argv) {
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

  size_t text_need = 0; /* the joined names, each in transport form, and a NUL each */
  for (size_t i = 0; i < names.count; i++) text_need += transport_len(names.names[i].p, names.names[i].len) + 1;
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
  napi_value subdirs = NULL, temps = NULL;
  uint32_t subdir_count = 0, temp_count = 0;
  int escaped = 0;
  int kept = 0;
  for (size_t i = 0; i < names.count; i++) {
    const char *name = names.names[i].p;
    size_t len = names.names[i].len;
    if (is_temp(name, len)) {
      push_string(env, &temps, &temp_count, name, len);
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
    size_t written = write_transport(text + t, name, len);
    if (written != len) escaped = 1;
    if (kind == KIND_DIR) push_string(env, &subdirs, &subdir_count, (const char *)text + t, written);
    t += written;
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
  napi_value escaped_value;
  napi_get_boolean(env, escaped, &escaped_value);
  napi_set_element(env, result, 4, escaped ? escaped_value : undef);
  return result;
}
