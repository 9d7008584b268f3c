/* What fs_native.c shares with the other files of the addon. */
#ifndef FS_NATIVE_H
#define FS_NATIVE_H
#include <node_api.h>

/* The errno's name, e.g. "EIO", as Node's fs errors give it in `code`. */
const char *errno_code(int err);
/* Throw an Error for errno from `syscall`; returns NULL for the caller to return. */
napi_value throw_errno(napi_env env, const char *syscall, int err);
/* Adds startRequestReader and its companions (request_reader.c) to the exports. */
void request_reader_init(napi_env env, napi_value exports);
#endif
