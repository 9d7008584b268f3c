{
  "targets": [
    {
      "target_name": "fs_native",
      "sources": ["src/fs_native.c", "src/request_reader.c", "src/memory_file.c", "src/peer_credentials.c"],
      "cflags": ["-Wall", "-O2"]
    }
  ]
}
