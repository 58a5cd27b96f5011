/*
 * Times set to the nanosecond: `utimens`, a synchronous utimensat/futimens (Node's utimes family
 * keeps microseconds, and no more: a double of seconds cannot hold nanoseconds past 1970 + 104 days).
 */
#include "fswalk.h"

/*
 * utimens(target, noFollow, atimeS, atimeN, mtimeS, mtimeN): sets the times of `target`, an open
 * descriptor (a number) or a path (a string, or a Buffer of its bytes), without following a link
 * when `noFollow`; the errno it failed with, or 0.
 */
napi_value utimens(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], result;
  napi_valuetype type;
  double t[4];
  bool no_follow = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool ok = argc >= 6 && napi_typeof(env, argv[0], &type) == napi_ok && napi_get_value_bool(env, argv[1], &no_follow) == napi_ok;
  for (int i = 0; ok && i < 4; i++) ok = napi_get_value_double(env, argv[2 + i], &t[i]) == napi_ok;
  if (!ok) {
    napi_throw_type_error(env, NULL, "utimens(fd or path, noFollow, atimeS, atimeN, mtimeS, mtimeN)");
    return NULL;
  }
  struct timespec times[2] = {meta_time(t[0], t[1]), meta_time(t[2], t[3])};
  int err = 0;
  if (type == napi_number) {
    int32_t fd = -1;
    napi_get_value_int32(env, argv[0], &fd);
    err = futimens(fd, times) == 0 ? 0 : errno;
  } else {
    char *path = path_arg(env, argv[0]);
    if (!path) {
      napi_throw_type_error(env, NULL, "utimens: a path must be a string or a Buffer");
      return NULL;
    }
    err = utimensat(AT_FDCWD, path, times, no_follow ? AT_SYMLINK_NOFOLLOW : 0) == 0 ? 0 : errno;
    free(path);
  }
  napi_create_int32(env, err, &result);
  return result;
}
