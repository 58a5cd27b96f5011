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
#include "fswalk.h"
#include <pthread.h>
#include <time.h>

/* A folder with temporary files, names that are not UTF-8, or an error (as `ListingExtra`). */
typedef struct {
  int32_t at;
  char *temps; /* names, each ending with NUL */
  size_t temps_len, temps_cap;
  uint32_t temp_count;
  int escaped; /* some of its names are in their transport form (see `write_transport`) */
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
  /* Temporary names met before the error are dropped, as the listing thread's are. */
  free(x->temps);
  x->temps = NULL;
  x->temps_len = x->temps_cap = 0;
  x->temp_count = 0;
  x->escaped = 0;
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
    if (grow((void **)&b->text, &b->text_cap, b->text_len + transport_len(rel, rel_len), 1)) return -1;
    b->text_len += write_transport(b->text + b->text_len, rel, rel_len);
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
    if (is_temp(name, len)) {
      extra_t *x = extra_of(b, at);
      if (!x || add_name(&x->temps, &x->temps_len, &x->temps_cap, &x->temp_count, name, len)) {
        rc = -1;
        goto out;
      }
      continue;
    }
    size_t text_len = transport_len(name, len);
    if (text_len != len) {
      /* Not UTF-8: listed all the same, its name in transport form (the main thread decodes it). */
      extra_t *x = extra_of(b, at);
      /* (The text was given room for every name's bytes; this one takes more.) */
      if (!x || grow((void **)&b->text, &b->text_cap, b->text_cap + text_len, 1)) {
        rc = -1;
        goto out;
      }
      x->escaped = 1;
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
    b->text_len += write_transport(b->text + b->text_len, name, len);
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
napi_value walk_start(napi_env env, napi_callback_info info) {
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
    if (x->escaped) {
      napi_get_boolean(env, true, &value);
      napi_set_named_property(env, extra, "escaped", value);
    }
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
napi_value walk_next(napi_env env, napi_callback_info info) {
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
napi_value walk_credit(napi_env env, napi_callback_info info) {
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
napi_value walk_ahead(napi_env env, napi_callback_info info) {
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
napi_value walk_stop(napi_env env, napi_callback_info info) {
  walker_t *w = walker_call(env, info, NULL);
  if (w) batches_free(request_stop(w));
  return NULL;
}
