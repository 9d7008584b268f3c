{
  "targets": [
    {
      "target_name": "fs_native",
      "sources": ["src/fs_native.c", "src/request_reader.c", "src/memory_file.c", "src/peer_credentials.c"],
      "defines": ["NAPI_VERSION=6"],
      "cflags": ["-Wall", "-O2", "-include", "<(module_root_dir)/src/glibc-compat.h"]
    }
  ]
}
