/*
 * fallocate(2) and lseek(2) with SEEK_DATA/SEEK_HOLE for Node, which exposes neither; for
 * stream sockets, SO_SNDBUF, sendfile(2), sendmsg(2) of many buffers and a recv(2) that may
 * wait, which Node's net module does not offer either.
 * Every function is synchronous, as readSync is: the file plugin calls fallocate and lseek for
 * trim, zero and extents, rare next to reads and writes; sendReply and sendBuffers send one
 * read reply of at most 256 KiB on a non-blocking socket, never waiting for it; receiveWithin
 * waits for a request for a bounded time chosen by the caller. (The thread that receives a
 * connection's requests is in request_reader.c, the memory plugin's mapped disk in memory_file.c.)
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
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fs_native.h"

const char *errno_code(int err) {
  switch (err) {
  case EBADF: return "EBADF";
  case EFBIG: return "EFBIG";
  case EINTR: return "EINTR";
  case EINVAL: return "EINVAL";
  case EIO: return "EIO";
  case ENODEV: return "ENODEV";
  case ENOMEM: return "ENOMEM";
  case ENOSPC: return "ENOSPC";
  case ENOTSOCK: return "ENOTSOCK";
  case ENXIO: return "ENXIO";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case EPERM: return "EPERM";
  case EPIPE: return "EPIPE";
  case ECONNRESET: return "ECONNRESET";
  case ESPIPE: return "ESPIPE";
  case ETXTBSY: return "ETXTBSY";
  case EROFS: return "EROFS";
  default: return "EIO";
  }
}

napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, errno_code(err), message);
  return NULL;
}

bool uint8_array_of(napi_env env, napi_value value, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t offset;
  return napi_get_typedarray_info(env, value, &type, length, data, &arraybuffer, &offset) == napi_ok &&
         type == napi_uint8_array;
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

/* The last argument of a call taking (fd, offset, length, n): n as an int32. */
static int get_fourth_int(napi_env env, napi_callback_info info, int32_t *n) {
  napi_value argv[4];
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[3], n) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (fd: number, offset: bigint, length: bigint, n: number)");
    return -1;
  }
  return 0;
}

/*
 * fadvise(fd, offset, length, advice): posix_fadvise(2), for the file plugin's fadvise= and
 * cache=none. advice is POSIX_FADV_* (Linux: 0 normal, 1 random, 2 sequential, 4 dontneed).
 */
static napi_value fadvise(napi_env env, napi_callback_info info) {
  int fd, advice;
  int64_t offset, length;
  if (get_args(env, info, 3, &fd, &offset, &length) == -1 || get_fourth_int(env, info, &advice) == -1) return NULL;
  int err = posix_fadvise(fd, offset, length, advice);
  if (err != 0) return throw_errno(env, "posix_fadvise", err);
  return NULL;
}

/*
 * syncFileRange(fd, offset, length, flags): sync_file_range(2), for cache=none's write-out
 * before its pages are dropped. flags are SYNC_FILE_RANGE_* (1 wait before, 2 write, 4 wait after).
 */
static napi_value sync_range(napi_env env, napi_callback_info info) {
  int fd, flags;
  int64_t offset, length;
  if (get_args(env, info, 3, &fd, &offset, &length) == -1 || get_fourth_int(env, info, &flags) == -1) return NULL;
  if (sync_file_range(fd, offset, length, (unsigned int) flags) == -1) return throw_errno(env, "sync_file_range", errno);
  return NULL;
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

/*
 * lockMemory(buffer): mlock(2) the memory of a Uint8Array, for the memory plugin's
 * allocator=malloc,mlock=true (Node cannot). The memory of an ArrayBuffer never moves, and it
 * stays locked until it is freed.
 */
static napi_value lock_memory(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1, length;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      !uint8_array_of(env, argv[0], &data, &length)) {
    napi_throw_type_error(env, NULL, "expected (buffer: Uint8Array)");
    return NULL;
  }
  if (length > 0 && mlock(data, length) == -1) return throw_errno(env, "mlock", errno);
  return NULL;
}

/* An Error for errno with a `sent` property: how many bytes had left before it happened. */
static napi_value throw_errno_sent(napi_env env, const char *syscall, int err, int64_t sent) {
  char message[256];
  napi_value code, text, error, sent_value;
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, errno_code(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int64(env, sent, &sent_value);
  napi_set_named_property(env, error, "sent", sent_value);
  napi_throw(env, error);
  return NULL;
}

/* See fs_native.h. */
int send_parts(int sock, struct iovec *parts, size_t count, int64_t *sent) {
  struct msghdr message = { .msg_iov = parts, .msg_iovlen = count };
  while (message.msg_iovlen > 0) {
    ssize_t n = sendmsg(sock, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return errno;
    }
    *sent += n;
    /* Step over what left: whole parts, then into the part the kernel stopped in. */
    while (message.msg_iovlen > 0 && (size_t)n >= message.msg_iov[0].iov_len) {
      n -= message.msg_iov[0].iov_len;
      message.msg_iov++;
      message.msg_iovlen--;
    }
    if (message.msg_iovlen > 0) {
      message.msg_iov[0].iov_base = (char *)message.msg_iov[0].iov_base + n;
      message.msg_iov[0].iov_len -= n;
    }
  }
  return 0;
}

/* See fs_native.h. */
int send_file_reply(int sock, int file, struct iovec header, int64_t offset, uint32_t count, int64_t *sent,
                    const char **syscall, bool *ended) {
  *ended = false;
  *syscall = "sendmsg";
  int err = send_parts(sock, &header, 1, sent);
  if (err != 0 || (size_t)*sent < header.iov_len) return err;
  *syscall = "sendfile";
  off_t position = offset;
  for (uint32_t data_sent = 0; data_sent < count;) {
    ssize_t n = sendfile(sock, file, &position, count - data_sent);
    if (n > 0) {
      data_sent += n;
      *sent += n;
    } else if (n == 0) {
      *ended = true;
      break;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      break;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

/*
 * sendReply(socketFd, header, fileFd, offset: bigint, count, spill): one NBD read reply, the
 * header followed by `count` bytes of the file from `offset`, sent without copying the data
 * through JavaScript: with sendfile, or for a memory file (memory_file.c) from its mapping,
 * which beats sendfile from shared memory. The socket is non-blocking: when it fills up (or the
 * file ends early), the data not sent is pread into `spill` (zeroes past the end of the file)
 * for the caller to queue behind, and the return value, the bytes of header and data that did
 * leave, says where to resume. Nothing is left half done: on an error the thrown Error's `sent` says how far it got.
 */
static napi_value send_reply(napi_env env, napi_callback_info info) {
  napi_value argv[6], result;
  size_t argc = 6, header_length, spill_length;
  int sock, file;
  int64_t offset;
  uint32_t count;
  bool lossless;
  void *header, *spill;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_int32(env, argv[0], &sock) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &header, &header_length) != napi_ok ||
      napi_get_value_int32(env, argv[2], &file) != napi_ok ||
      napi_get_value_bigint_int64(env, argv[3], &offset, &lossless) != napi_ok || !lossless || offset < 0 ||
      napi_get_value_uint32(env, argv[4], &count) != napi_ok ||
      napi_get_buffer_info(env, argv[5], &spill, &spill_length) != napi_ok || spill_length < count) {
    napi_throw_type_error(env, NULL, "expected (socketFd, header: Buffer, fileFd, offset: bigint, count, spill: Buffer)");
    return NULL;
  }
  int64_t sent = 0;
  const char *syscall = "sendmsg";
  bool ended;
  struct iovec header_part = { .iov_base = header, .iov_len = header_length };
  struct memory_file *memory = memory_file_of(file);
  int err;
  if (memory != NULL) {
    err = memory_file_send(memory, sock, header_part, (uint64_t)offset, count, &sent);
    memory_file_unref(memory);
  } else {
    /* A file that ended early: the rest is zeroes, from the spill. */
    err = send_file_reply(sock, file, header_part, offset, count, &sent, &syscall, &ended);
  }
  if (err != 0) return throw_errno_sent(env, syscall, err, sent);
  uint32_t data_sent = sent > (int64_t)header_length ? (uint32_t)(sent - (int64_t)header_length) : 0;
  uint32_t spilled = 0;
  while (data_sent + spilled < count) {
    ssize_t n = pread(file, (char *)spill + spilled, count - data_sent - spilled, offset + data_sent + spilled);
    if (n > 0) spilled += n;
    else if (n == 0) {
      memset((char *)spill + spilled, 0, count - data_sent - spilled);
      break;
    } else if (errno != EINTR) return throw_errno_sent(env, "pread", errno, sent);
  }
  napi_create_int64(env, sent, &result);
  return result;
}

/* The most iovecs sendBuffers takes: a header and the parts of one read reply. */
#define SEND_PARTS_MAX 64

/* A Uint8Array argument as an iovec; false (with a TypeError thrown) if it is not one. */
static bool uint8_array_iovec(napi_env env, napi_value value, struct iovec *part) {
  if (!uint8_array_of(env, value, &part->iov_base, &part->iov_len)) {
    napi_throw_type_error(env, NULL, "expected (socketFd, header: Uint8Array, parts: Uint8Array[])");
    return false;
  }
  return true;
}

/*
 * sendBuffers(socketFd, header, parts): one NBD read reply from memory, the header then the parts
 * (Uint8Arrays such as views of an interpreter's heap or of RAM disk pages), written without
 * waiting. Returns the bytes of header and parts sent; on an error the thrown Error's `sent`
 * says how far it got.
 */
static napi_value send_buffers(napi_env env, napi_callback_info info) {
  napi_value argv[3], result, element;
  size_t argc = 3;
  int sock;
  uint32_t count;
  bool is_array;
  struct iovec parts[SEND_PARTS_MAX + 1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_is_array(env, argv[2], &is_array) != napi_ok ||
      !is_array || napi_get_array_length(env, argv[2], &count) != napi_ok || count > SEND_PARTS_MAX) {
    napi_throw_type_error(env, NULL, "expected (socketFd, header: Uint8Array, parts: Uint8Array[] of at most 64)");
    return NULL;
  }
  if (!uint8_array_iovec(env, argv[1], &parts[0])) return NULL;
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, argv[2], i, &element) != napi_ok || !uint8_array_iovec(env, element, &parts[i + 1])) {
      return NULL;
    }
  }
  int64_t sent = 0;
  int err = send_parts(sock, parts, count + 1, &sent);
  if (err != 0) return throw_errno_sent(env, "sendmsg", err, sent);
  napi_create_int64(env, sent, &result);
  return result;
}

/* Whether a recv that failed only found nothing there yet. */
static bool nothing_yet(ssize_t n) {
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static int64_t micros_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1000000L + (now.tv_nsec - start->tv_nsec) / 1000;
}

/*
 * A blocking recv on a non-blocking socket, giving up after the timeout: the socket is made
 * blocking for the call only. Unlike poll or epoll followed by recv, the sleeping thread is
 * woken straight into the recv by the arriving bytes.
 */
static ssize_t recv_blocking(int sock, void *data, size_t length, uint32_t timeout_micros) {
  struct timeval timeout = { .tv_sec = timeout_micros / 1000000, .tv_usec = timeout_micros % 1000000 };
  int flags = fcntl(sock, F_GETFL);
  if (flags == -1 || setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == -1 ||
      fcntl(sock, F_SETFL, flags & ~O_NONBLOCK) == -1) {
    return -1;
  }
  ssize_t n = recv(sock, data, length, 0);
  int saved = errno;
  fcntl(sock, F_SETFL, flags);
  errno = saved;
  return n;
}

/*
 * receiveWithin(socketFd, buffer, spinMicros, timeoutMicros): what arrives on a non-blocking
 * socket, read into `buffer`. It polls the socket without sleeping for up to spinMicros, then
 * sleeps in a blocking recv for up to timeoutMicros more. Returns the bytes read, or 0 when none
 * came in time or the socket ended or failed: the event loop's own read of the socket will see
 * the end or the error.
 */
static napi_value receive_within(napi_env env, napi_callback_info info) {
  napi_value argv[4], result;
  size_t argc = 4;
  int sock;
  uint32_t spin_micros, timeout_micros;
  size_t length;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &sock) != napi_ok || !uint8_array_of(env, argv[1], &data, &length) ||
      napi_get_value_uint32(env, argv[2], &spin_micros) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &timeout_micros) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (socketFd, buffer: Uint8Array, spinMicros, timeoutMicros)");
    return NULL;
  }
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  ssize_t n;
  do n = recv(sock, data, length, MSG_DONTWAIT);
  while (nothing_yet(n) && micros_since(&start) < spin_micros);
  if (nothing_yet(n) && timeout_micros > 0) n = recv_blocking(sock, data, length, timeout_micros);
  napi_create_int64(env, n > 0 ? n : 0, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    EXPORTED_FUNCTION("punchHole", punch_hole),
    EXPORTED_FUNCTION("zeroRange", zero_range),
    EXPORTED_FUNCTION("seekData", seek_data),
    EXPORTED_FUNCTION("seekHole", seek_hole),
    EXPORTED_FUNCTION("setSendBuffer", set_send_buffer),
    EXPORTED_FUNCTION("sendReply", send_reply),
    EXPORTED_FUNCTION("sendBuffers", send_buffers),
    EXPORTED_FUNCTION("receiveWithin", receive_within),
    EXPORTED_FUNCTION("lockMemory", lock_memory),
    EXPORTED_FUNCTION("fadvise", fadvise),
    EXPORTED_FUNCTION("syncFileRange", sync_range),
  };
  DEFINE_EXPORTS(env, exports, properties);
  request_reader_init(env, exports);
  memory_file_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
