/*
 * What the kernel knows of the process at the other end of a Unix socket: SO_PEERCRED (pid,
 * uid, gid, as the peer had them when it connected) and SO_PEERSEC (its security label, when a
 * Linux security module gives one). Node's net module exposes neither. Both only read the
 * socket's options; nothing is sent or received.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fs_native.h"

/* Whether the socket is an AF_UNIX one: SO_PEERCRED on a TCP socket "succeeds" with no facts. */
static int is_unix_socket(int sock) {
  struct sockaddr_storage address;
  socklen_t length = sizeof address;
  if (getsockname(sock, (struct sockaddr *)&address, &length) == -1) return -1;
  return address.ss_family == AF_UNIX;
}

static int socket_arg(napi_env env, napi_callback_info info, int *sock) {
  napi_value argv[1];
  size_t argc = 1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], sock) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (socketFd)");
    return -1;
  }
  return 0;
}

/*
 * peerCredentials(socketFd): [pid, uid, gid] of the peer of a Unix socket. Throws ENOTSOCK's
 * Error for a descriptor that is not a socket and EAFNOSUPPORT's for one that is not AF_UNIX.
 */
static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  int sock;
  if (socket_arg(env, info, &sock) == -1) return NULL;
  int unix_socket = is_unix_socket(sock);
  if (unix_socket == -1) return throw_errno(env, "getsockname", errno);
  if (!unix_socket) {
    napi_throw_error(env, "EAFNOSUPPORT", "not a Unix domain socket");
    return NULL;
  }
  struct ucred cred;
  socklen_t length = sizeof cred;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &length) == -1) return throw_errno(env, "getsockopt: SO_PEERCRED", errno);
  napi_value result, pid, uid, gid;
  napi_create_array_with_length(env, 3, &result);
  napi_create_int64(env, cred.pid, &pid);
  napi_create_int64(env, cred.uid, &uid);
  napi_create_int64(env, cred.gid, &gid);
  napi_set_element(env, result, 0, pid);
  napi_set_element(env, result, 1, uid);
  napi_set_element(env, result, 2, gid);
  return result;
}

/* peerSecurityContext(socketFd): the peer's security label (SO_PEERSEC); throws when there is none. */
static napi_value peer_security_context(napi_env env, napi_callback_info info) {
  int sock;
  if (socket_arg(env, info, &sock) == -1) return NULL;
  char label[4096];
  socklen_t length = sizeof label - 1;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERSEC, label, &length) == -1) return throw_errno(env, "getsockopt: SO_PEERSEC", errno);
  /* The kernel may or may not count a terminating NUL. */
  while (length > 0 && label[length - 1] == '\0') length--;
  napi_value result;
  napi_create_string_utf8(env, label, length, &result);
  return result;
}

void peer_credentials_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    EXPORTED_FUNCTION("peerCredentials", peer_credentials),
    EXPORTED_FUNCTION("peerSecurityContext", peer_security_context),
  };
  DEFINE_EXPORTS(env, exports, properties);
}
