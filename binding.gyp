{
  "targets": [
    {
      "target_name": "fswalk",
      "sources": ["native/addon.c", "native/common.c", "native/list.c", "native/walker.c", "native/pool.c", "native/copy.c", "native/times.c", "native/watch.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
