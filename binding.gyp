{
  "targets": [
    {
      "target_name": "fswalk",
      "sources": ["native/fswalk.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
