/*
 * fallocate(2) and lseek(2) with SEEK_DATA/SEEK_HOLE for Node, which exposes neither, and
 * SO_SNDBUF for stream sockets, which Node's net module cannot set either.
 * Every function is synchronous: each is one short system call, and the file plugin calls
 * them for trim, zero and extents, which are rare compared to reads and writes.
 * Errors throw an Error whose `code` is the errno name, as Node's own fs errors do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *errno_code(int err) {
  switch (err) {
  case EBADF: return "EBADF";
  case EFBIG: return "EFBIG";
  case EINTR: return "EINTR";
  case EINVAL: return "EINVAL";
  case EIO: return "EIO";
  case ENODEV: return "ENODEV";
  case ENOSPC: return "ENOSPC";
  case ENOTSOCK: return "ENOTSOCK";
  case ENXIO: return "ENXIO";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case EPERM: return "EPERM";
  case ESPIPE: return "ESPIPE";
  case ETXTBSY: return "ETXTBSY";
  case EROFS: return "EROFS";
  default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, errno_code(err), message);
  return NULL;
}

/* Arguments: fd (number), then up to two offsets/lengths as bigint. */
static int get_args(napi_env env, napi_callback_info info, size_t want, int *fd, int64_t *a, int64_t *b) {
  napi_value argv[3];
  size_t argc = 3;
  bool lossless;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return -1;
  }
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok ||
      napi_get_value_bigint_int64(env, argv[1], a, &lossless) != napi_ok || !lossless ||
      (want > 2 && (napi_get_value_bigint_int64(env, argv[2], b, &lossless) != napi_ok || !lossless))) {
    napi_throw_type_error(env, NULL, "expected (fd: number, offset: bigint[, length: bigint])");
    return -1;
  }
  return 0;
}

static napi_value do_fallocate(napi_env env, napi_callback_info info, int mode, const char *name) {
  int fd;
  int64_t offset, length;
  if (get_args(env, info, 3, &fd, &offset, &length) == -1) return NULL;
  if (fallocate(fd, mode, offset, length) == -1) return throw_errno(env, name, errno);
  return NULL;
}

static napi_value punch_hole(napi_env env, napi_callback_info info) {
  return do_fallocate(env, info, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "fallocate(PUNCH_HOLE)");
}

static napi_value zero_range(napi_env env, napi_callback_info info) {
  return do_fallocate(env, info, FALLOC_FL_ZERO_RANGE, "fallocate(ZERO_RANGE)");
}

/* lseek with SEEK_DATA or SEEK_HOLE; returns -1n at ENXIO (no data/hole after offset). */
static napi_value do_seek(napi_env env, napi_callback_info info, int whence, const char *name) {
  int fd;
  int64_t offset, unused;
  napi_value result;
  if (get_args(env, info, 2, &fd, &offset, &unused) == -1) return NULL;
  off_t r = lseek(fd, offset, whence);
  if (r == -1 && errno != ENXIO) return throw_errno(env, name, errno);
  napi_create_bigint_int64(env, r, &result);
  return result;
}

static napi_value seek_data(napi_env env, napi_callback_info info) {
  return do_seek(env, info, SEEK_DATA, "lseek(SEEK_DATA)");
}

static napi_value seek_hole(napi_env env, napi_callback_info info) {
  return do_seek(env, info, SEEK_HOLE, "lseek(SEEK_HOLE)");
}

/*
 * setsockopt(SO_SNDBUF): arguments fd (number) and bytes (number). The kernel caps the value at
 * net.core.wmem_max (and doubles it for its own bookkeeping); returns the size it settled on.
 */
static napi_value set_send_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  size_t argc = 2;
  int fd, bytes;
  socklen_t length = sizeof bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &bytes) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (fd: number, bytes: number)");
    return NULL;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) == -1) return throw_errno(env, "setsockopt(SO_SNDBUF)", errno);
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, &length) == -1) return throw_errno(env, "getsockopt(SO_SNDBUF)", errno);
  napi_create_int32(env, bytes, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    { "punchHole", NULL, punch_hole, NULL, NULL, NULL, napi_default, NULL },
    { "zeroRange", NULL, zero_range, NULL, NULL, NULL, napi_default, NULL },
    { "seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL },
    { "seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL },
    { "setSendBuffer", NULL, set_send_buffer, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
