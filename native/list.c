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
 * [textEnd, numsEnd, subfolders, temps, undecodable]: the names of the entries that are folders,
 * in order; the names of our temporary files and the names that are not UTF-8, left out of the
 * listing (each array is undefined when empty). An entry gone since the folder was read is left
 * out too. If `text` or `nums` lacks room, nothing is written and it returns [-1, text bytes
 * needed, numbers needed]. Throws as Node's fs does if the folder cannot be read or an lstat
 * fails for a reason other than the entry being gone.
 */
napi_value list(napi_env env, napi_callback_info info) {
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
