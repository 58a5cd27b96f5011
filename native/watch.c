/*
 * The watcher's events, read from inotify by a thread of our own: one descriptor for every watch
 * (Node's fs.watch makes a handle per folder), and every event the kernel gives, IN_Q_OVERFLOW
 * included: libuv drops the events that carry no watch descriptor, so through fs.watch an
 * overflowed queue (lost events) goes unseen.
 *
 * watchOpen(onEvents): starts the thread; `onEvents(buffer)` gets each read's raw events (struct
 * inotify_event, one after another), on the main thread. watchAdd(watch, path, mask) answers the
 * watch descriptor, or -errno; watchRemove(watch, wd); watchClose(watch) stops the thread. The
 * thread does not keep the process alive.
 */
#include "fswalk.h"
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

typedef struct {
  int fd;   /* inotify */
  int stop; /* an eventfd: written to stop the thread */
  pthread_t thread;
  napi_threadsafe_function tsfn;
  int running;
} watch_t;

typedef struct {
  size_t len;
  unsigned char bytes[];
} events_t;

static void *watch_main(void *arg) {
  watch_t *w = arg;
  unsigned char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
  struct pollfd fds[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = w->stop, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) continue;
    for (;;) {
      ssize_t n = read(w->fd, buf, sizeof buf);
      if (n <= 0) break; /* EAGAIN: all read */
      events_t *e = malloc(sizeof *e + (size_t)n);
      if (!e) continue; /* (lost: the next pass is full only if the kernel says so; rare enough) */
      e->len = (size_t)n;
      memcpy(e->bytes, buf, (size_t)n);
      if (napi_call_threadsafe_function(w->tsfn, e, napi_tsfn_blocking) != napi_ok) free(e);
    }
  }
  return NULL;
}

/* On the main thread: hands the events to JavaScript as a Buffer. */
static void call_js(napi_env env, napi_value js_callback, void *context, void *data) {
  events_t *e = data;
  if (env != NULL && js_callback != NULL) {
    napi_value buffer, undefined;
    void *copy;
    if (napi_create_buffer_copy(env, e->len, e->bytes, &copy, &buffer) == napi_ok) {
      napi_get_undefined(env, &undefined);
      napi_call_function(env, undefined, js_callback, 1, &buffer, NULL);
    }
  }
  free(e);
}

static void watch_finalize(napi_env env, void *data, void *hint) {
  watch_t *w = data;
  if (w->running) {
    uint64_t one = 1;
    (void)!write(w->stop, &one, sizeof one);
    pthread_join(w->thread, NULL);
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  }
  if (w->fd >= 0) close(w->fd);
  if (w->stop >= 0) close(w->stop);
  free(w);
}

napi_value watch_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, name;
  napi_valuetype type;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "watchOpen(onEvents)");
    return NULL;
  }
  watch_t *w = calloc_or_throw(env, sizeof *w);
  if (!w) return NULL;
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  w->stop = eventfd(0, EFD_CLOEXEC);
  if (w->fd < 0 || w->stop < 0) {
    int err = errno;
    watch_finalize(env, w, NULL);
    throw_errno(env, err, "inotify_init", "", NULL);
    return NULL;
  }
  napi_create_string_utf8(env, "folder-sync:watch", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &w->tsfn) != napi_ok) {
    watch_finalize(env, w, NULL);
    napi_throw_error(env, NULL, "watchOpen: cannot make its callback");
    return NULL;
  }
  napi_unref_threadsafe_function(env, w->tsfn);
  if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
    watch_finalize(env, w, NULL);
    napi_throw_error(env, NULL, "watchOpen: cannot start its thread");
    return NULL;
  }
  w->running = 1;
  napi_create_object(env, &result);
  /* (A watch the program lost without `watchClose` is closed when it is collected.) */
  napi_wrap(env, result, w, watch_finalize, NULL, NULL);
  return result;
}

static watch_t *watch_of(napi_env env, napi_value value) {
  watch_t *w = NULL;
  if (napi_unwrap(env, value, (void **)&w) != napi_ok || !w) napi_throw_type_error(env, NULL, "not a watch");
  return w;
}

napi_value watch_add(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  uint32_t mask = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  watch_t *w = argc >= 3 ? watch_of(env, argv[0]) : NULL;
  if (!w) return NULL;
  char *path = path_arg(env, argv[1]);
  if (!path || napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    free(path);
    napi_throw_type_error(env, NULL, "watchAdd(watch, path, mask)");
    return NULL;
  }
  int wd = inotify_add_watch(w->fd, path, mask);
  free(path);
  napi_create_int32(env, wd >= 0 ? wd : -errno, &result);
  return result;
}

napi_value watch_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], undefined;
  int32_t wd = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  watch_t *w = argc >= 2 ? watch_of(env, argv[0]) : NULL;
  if (!w) return NULL;
  napi_get_value_int32(env, argv[1], &wd);
  inotify_rm_watch(w->fd, wd);
  napi_get_undefined(env, &undefined);
  return undefined;
}

napi_value watch_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undefined;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_undefined(env, &undefined);
  watch_t *w = NULL;
  if (argc < 1 || napi_remove_wrap(env, argv[0], (void **)&w) != napi_ok || !w) return undefined;
  watch_finalize(env, w, NULL);
  return undefined;
}
