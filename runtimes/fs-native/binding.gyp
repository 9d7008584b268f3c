{
  "targets": [
    {
      "target_name": "fs_native",
      "sources": ["src/fs_native.c", "src/request_reader.c"],
      "cflags": ["-Wall", "-O2"]
    }
  ]
}
