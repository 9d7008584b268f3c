/* What fs_native.c shares with the other files of the addon. */
#ifndef FS_NATIVE_H
#define FS_NATIVE_H
#include <node_api.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The errno's name, e.g. "EIO", as Node's fs errors give it in `code`. */
const char *errno_code(int err);
/* Throw an Error for errno from `syscall`; returns NULL for the caller to return. */
napi_value throw_errno(napi_env env, const char *syscall, int err);
/* The memory of a Uint8Array (a Buffer is one) in `value`; false, throwing nothing, if it is not one. */
bool uint8_array_of(napi_env env, napi_value value, void **data, size_t *length);
/* One function of the exports, for napi_define_properties. */
#define EXPORTED_FUNCTION(name, function) { name, NULL, function, NULL, NULL, NULL, napi_default, NULL }
/* Add a whole array of EXPORTED_FUNCTIONs to the exports. */
#define DEFINE_EXPORTS(env, exports, properties) \
  napi_define_properties(env, exports, sizeof(properties) / sizeof((properties)[0]), properties)
/*
 * sendmsg the parts in order on a non-blocking socket until all have left or the socket is full;
 * *sent counts the bytes that left. Returns 0, or the errno of a failure.
 */
int send_parts(int sock, struct iovec *parts, size_t count, int64_t *sent);
/*
 * Send `header` then `count` bytes of `file` from `offset` (sendfile) on a non-blocking socket,
 * as far as it takes them now or the file lasts (then *ended); *sent counts the bytes that left.
 * 0, or an errno of the call *syscall names.
 */
int send_file_reply(int sock, int file, struct iovec header, int64_t offset, uint32_t count, int64_t *sent,
                    const char **syscall, bool *ended);
/* Adds startRequestReader and its companions (request_reader.c) to the exports. */
void request_reader_init(napi_env env, napi_value exports);

/* The memory plugin's disk, a memfd mapped shared for its whole life (memory_file.c). */
struct memory_file {
  atomic_int refs;
  int fd;
  /* NULL when the file is empty. */
  uint8_t *base;
  uint64_t length;
  struct memory_file *next;
};
/* The memory file whose own descriptor is `fd` (not a duplicate), with a reference taken; NULL if none. */
struct memory_file *memory_file_of(int fd);
void memory_file_unref(struct memory_file *f);
/*
 * Send `header` then `count` bytes of f from `offset` from the mapping, on a non-blocking
 * socket, as far as it takes them now; *sent counts the bytes that left. 0, or an errno.
 */
int memory_file_send(struct memory_file *f, int sock, struct iovec header, uint64_t offset, uint32_t count, int64_t *sent);
/* Adds createMemoryFile and writeMemoryFile to the exports. */
void memory_file_init(napi_env env, napi_value exports);
/* Adds peerCredentials and peerSecurityContext (peer_credentials.c) to the exports. */
void peer_credentials_init(napi_env env, napi_value exports);
#endif
