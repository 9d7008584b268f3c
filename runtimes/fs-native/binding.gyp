{
  "targets": [
    {
      "target_name": "fs_native",
      "sources": ["src/fs_native.c"],
      "cflags": ["-Wall", "-O2"]
    }
  ]
}
