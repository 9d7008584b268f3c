/*
 * Memory files: the memory plugin's disk as an anonymous shared-memory file (memfd), mapped
 * into the process once, for the file's whole life.
 *
 * Why: the disk's descriptor then serves as the plugin's write target and read source, as a
 * file's does. The thread receiving a connection's requests (request_reader.c) copies a write's
 * payload into the mapping and replies itself, where the event loop would copy it into pages of
 * its own and reply; and sendReply sends a read reply from the mapping, header and data in one
 * sendmsg (sendfile from shared memory is slower than that). The mapping is made once and kept
 * because its page tables are filled one fault per 4 KiB page touched: a mapping per connection
 * would pay those faults again on every connection.
 *
 * The file's pages come and go as the kernel's: writing allocates them, punching a hole
 * (fallocate) frees them, and reading a hole with pread allocates nothing. Pages written
 * through the mapping count in the process's RSS, as a native server's heap pages do.
 *
 * The request reader and sendReply find the mapping from the file's own descriptor
 * (memory_file_of), so the plugin only ever hands out a descriptor, as the file plugin does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_native.h"

/* Every memory file alive, so that a write target's descriptor finds its mapping. */
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct memory_file *files;

static void unlink_file_locked(struct memory_file *f) {
  for (struct memory_file **p = &files; *p != NULL; p = &(*p)->next) {
    if (*p == f) {
      *p = f->next;
      return;
    }
  }
}

void memory_file_unref(struct memory_file *f) {
  /* Under the lock memory_file_of takes its reference in, so that it cannot revive a file going. */
  pthread_mutex_lock(&files_lock);
  bool last = atomic_fetch_sub(&f->refs, 1) == 1;
  if (last) unlink_file_locked(f);
  pthread_mutex_unlock(&files_lock);
  if (!last) return;
  if (f->base != NULL) munmap(f->base, f->length);
  close(f->fd);
  free(f);
}

struct memory_file *memory_file_of(int fd) {
  pthread_mutex_lock(&files_lock);
  struct memory_file *found = files;
  /* A file keeps its descriptor open until it is freed, so no other file can have that number. */
  while (found != NULL && found->fd != fd) found = found->next;
  if (found != NULL) atomic_fetch_add(&found->refs, 1);
  pthread_mutex_unlock(&files_lock);
  return found;
}

/* What holes are sent from, and what zero checks compare with. */
static const uint8_t zeroes[64 * 1024];
/* iovecs per sendmsg: header, then data and hole pieces. */
#define SEND_PIECES 64
#define KERNEL_PAGE 4096
/* Kernel pages looked at together. */
#define WINDOW_PAGES 256

/*
 * Which kernel pages of [first, first + count) hold data, into data[] (count <= WINDOW_PAGES,
 * all within the file). mincore on the mapping says which are in memory, and a page of the file
 * in memory is data. One that is not is a hole, or data swapped out: SEEK_DATA decides, and one
 * call answers for every page up to the next data. (Not SEEK_HOLE: it walks every page of data
 * up to the next hole, the whole disk when it is full.) 0, or an errno.
 */
static int data_pages(struct memory_file *f, uint64_t first, size_t count, bool *data) {
  unsigned char resident[WINDOW_PAGES];
  if (mincore(f->base + first * KERNEL_PAGE, count * KERNEL_PAGE, resident) == -1) return errno;
  uint64_t next_data = 0;
  bool known = false;
  for (size_t i = 0; i < count; i++) {
    uint64_t at = (first + i) * KERNEL_PAGE;
    if (resident[i] & 1) {
      data[i] = true;
      continue;
    }
    if (!known || next_data < at) {
      off_t found = lseek(f->fd, (off_t)at, SEEK_DATA);
      if (found == -1 && errno != ENXIO) return errno;
      next_data = found == -1 ? UINT64_MAX : (uint64_t)found;
      known = true;
    }
    data[i] = next_data < at + KERNEL_PAGE;
  }
  return 0;
}

/* Kernel pages from `first` up to the one holding byte `limit - 1`, at most a window. */
static size_t window_pages(uint64_t first, uint64_t limit) {
  uint64_t pages = (limit + KERNEL_PAGE - 1) / KERNEL_PAGE - first;
  return pages > WINDOW_PAGES ? WINDOW_PAGES : (size_t)pages;
}

/*
 * The run of data or of hole that starts at `at`, up to `limit`: *run_end is where it ends, and
 * *data says which. 0, or an errno.
 */
static int next_run(struct memory_file *f, uint64_t at, uint64_t limit, bool *data, uint64_t *run_end) {
  uint64_t first = at / KERNEL_PAGE;
  size_t pages = window_pages(first, limit), page = 1;
  bool holds[WINDOW_PAGES];
  int err = data_pages(f, first, pages, holds);
  if (err != 0) return err;
  while (page < pages && holds[page] == holds[0]) page++;
  *data = holds[0];
  *run_end = (first + page) * KERNEL_PAGE;
  if (*run_end > limit) *run_end = limit;
  return 0;
}

/*
 * The iovecs for the next bytes of [*position, end) into parts[*count...]: the mapping where the
 * file has data, zeroes where it has holes. Stops when the parts are full. 0, or an errno.
 */
static int add_pieces(struct memory_file *f, uint64_t *position, uint64_t end, struct iovec *parts, size_t *count) {
  while (*position < end && *count < SEND_PIECES) {
    uint64_t at = *position, run_end = 0;
    bool data = false;
    int err = next_run(f, at, end, &data, &run_end);
    if (err != 0) return err;
    if (!data && run_end - at > sizeof zeroes) run_end = at + sizeof zeroes;
    /* A data run that follows data of the last part extends it. */
    struct iovec *last = &parts[*count - 1];
    if (data && *count > 1 && (uint8_t *)last->iov_base + last->iov_len == f->base + at) last->iov_len += run_end - at;
    else parts[(*count)++] = (struct iovec){ .iov_base = data ? f->base + at : (void *)zeroes, .iov_len = run_end - at };
    *position = run_end;
  }
  return 0;
}

int memory_file_send(struct memory_file *f, int sock, struct iovec header, uint64_t offset, uint32_t count, int64_t *sent) {
  if (offset > f->length || count > f->length - offset) return EINVAL;
  struct iovec parts[SEND_PIECES] = { header };
  size_t used = 1;
  uint64_t position = offset, end = offset + count;
  for (;;) {
    int err = add_pieces(f, &position, end, parts, &used);
    if (err != 0) return err;
    int64_t length = 0, before = *sent;
    for (size_t i = 0; i < used; i++) length += parts[i].iov_len;
    err = send_parts(sock, parts, used, sent);
    /* Done, failed, or the socket is full: the caller keeps the rest. */
    if (err != 0 || position == end || *sent - before < length) return err;
    used = 0;
  }
}

static void finalize_memory_file(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  memory_file_unref(data);
}

/*
 * createMemoryFile(name, size: bigint): a memfd of `size` bytes, all holes, mapped shared.
 * Returns {file, fd}: the handle (which keeps file, descriptor and mapping alive) and the
 * descriptor, for pread and fallocate.
 */
static napi_value create_memory_file(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, handle, fd_value;
  size_t argc = 2;
  char name[64];
  uint64_t size;
  bool lossless;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, NULL) != napi_ok ||
      napi_get_value_bigint_uint64(env, argv[1], &size, &lossless) != napi_ok || !lossless ||
      size > (uint64_t)INT64_MAX || size != (uint64_t)(size_t)size) {
    napi_throw_type_error(env, NULL, "expected (name: string, size: bigint)");
    return NULL;
  }
  struct memory_file *f = calloc(1, sizeof *f);
  if (f == NULL) return throw_errno(env, "calloc", ENOMEM);
  const char *failed = NULL;
  f->fd = memfd_create(name, MFD_CLOEXEC);
  if (f->fd == -1) failed = "memfd_create";
  else if (ftruncate(f->fd, (off_t)size) == -1) failed = "ftruncate";
  else if (size > 0 && (f->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0)) == MAP_FAILED) {
    f->base = NULL;
    failed = "mmap";
  } else if (size > 0) {
    /*
     * 4 KiB pages, even where shared memory is set to use huge pages: a 2 MiB page allocated
     * by one write would make its untouched 32 KiB pages look allocated too (see memoryFilePages).
     */
    madvise(f->base, size, MADV_NOHUGEPAGE);
  }
  if (failed != NULL) {
    int err = errno;
    if (f->fd != -1) close(f->fd);
    free(f);
    return throw_errno(env, failed, err);
  }
  f->length = size;
  atomic_init(&f->refs, 1);
  if (napi_create_external(env, f, finalize_memory_file, NULL, &handle) != napi_ok) {
    memory_file_unref(f);
    napi_throw_error(env, "EIO", "cannot create the memory file's handle");
    return NULL;
  }
  pthread_mutex_lock(&files_lock);
  f->next = files;
  files = f;
  pthread_mutex_unlock(&files_lock);
  napi_create_object(env, &result);
  napi_create_int32(env, f->fd, &fd_value);
  napi_set_named_property(env, result, "file", handle);
  napi_set_named_property(env, result, "fd", fd_value);
  return result;
}

/* What memoryFilePages says of a page. */
enum page_state { PAGE_HOLE = 0, PAGE_ZERO = 1, PAGE_DATA = 2 };

/* Whether n bytes are all zero: the first few, then each byte against the one 16 before it. */
static bool is_zero(const uint8_t *p, size_t n) {
  size_t head = n < 16 ? n : 16;
  for (size_t i = 0; i < head; i++)
    if (p[i] != 0) return false;
  return n <= 16 || memcmp(p, p + 16, n - 16) == 0;
}

/*
 * The state of the page [start, end) (clipped to the file), whose kernel pages hold data as
 * `holds` says, looking at its bytes from `from` on for zero.
 */
static uint8_t page_state(struct memory_file *f, const bool *holds, uint64_t start, uint64_t from, uint64_t end) {
  if (end > f->length) end = f->length;
  bool allocated = false, zero = true;
  for (size_t i = 0; start + i * KERNEL_PAGE < end; i++) {
    allocated |= holds[i];
    uint64_t piece = start + i * KERNEL_PAGE, piece_end = piece + KERNEL_PAGE;
    if (piece < from) piece = from;
    if (piece_end > end) piece_end = end;
    /* Only data is read through the mapping: reading a hole there would allocate it. */
    if (zero && holds[i] && piece < piece_end) zero = is_zero(f->base + piece, piece_end - piece);
  }
  return !allocated ? PAGE_HOLE : zero ? PAGE_ZERO : PAGE_DATA;
}

/*
 * memoryFilePages(file, offset: bigint, pageSize, states: Uint8Array): the memory plugin's pages
 * (of pageSize bytes, a multiple of 4 KiB) as nbdkit sees them, from the one holding offset:
 * states.length of them, each PAGE_HOLE when no part of it holds data, else PAGE_ZERO when it is
 * zero from offset (the first) or its start (the others) to its end, else PAGE_DATA.
 */
static napi_value memory_file_pages(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4, count;
  uint8_t *states;
  struct memory_file *f;
  uint64_t offset;
  uint32_t page_size;
  bool lossless;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_external(env, argv[0], (void **)&f) != napi_ok ||
      napi_get_value_bigint_uint64(env, argv[1], &offset, &lossless) != napi_ok || !lossless ||
      napi_get_value_uint32(env, argv[2], &page_size) != napi_ok || page_size == 0 ||
      page_size % KERNEL_PAGE != 0 || page_size / KERNEL_PAGE > WINDOW_PAGES ||
      !uint8_array_of(env, argv[3], (void **)&states, &count)) {
    napi_throw_type_error(env, NULL, "expected (file, offset: bigint, pageSize, states: Uint8Array)");
    return NULL;
  }
  uint64_t start = offset - offset % page_size;
  if (offset >= f->length || count > (f->length - start + page_size - 1) / page_size) {
    return throw_errno(env, "memoryFilePages", EINVAL);
  }
  /* A window of kernel pages at a time: one mincore for many pages. */
  size_t kernel_per_page = page_size / KERNEL_PAGE, per_window = WINDOW_PAGES / kernel_per_page;
  bool holds[WINDOW_PAGES];
  for (size_t done = 0; done < count; done += per_window) {
    size_t pages = count - done < per_window ? count - done : per_window;
    uint64_t window = start + done * page_size, window_end = window + pages * page_size;
    uint64_t first = window / KERNEL_PAGE;
    int err = data_pages(f, first, window_pages(first, window_end < f->length ? window_end : f->length), holds);
    if (err != 0) return throw_errno(env, "memoryFilePages", err);
    for (size_t i = 0; i < pages; i++) {
      uint64_t page = window + i * page_size;
      states[done + i] = page_state(f, holds + i * kernel_per_page, page, done + i == 0 ? offset : page, page + page_size);
    }
  }
  return NULL;
}

/*
 * writeMemoryFile(file, data: Uint8Array, offset: bigint): copy data into the file at offset,
 * through the mapping (so that the pages count in RSS as those the request reader writes do).
 */
static napi_value write_memory_file(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3, length;
  void *data;
  struct memory_file *f;
  uint64_t offset;
  bool lossless;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_external(env, argv[0], (void **)&f) != napi_ok ||
      !uint8_array_of(env, argv[1], &data, &length) ||
      napi_get_value_bigint_uint64(env, argv[2], &offset, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, NULL, "expected (file, data: Uint8Array, offset: bigint)");
    return NULL;
  }
  if (offset > f->length || length > f->length - offset) return throw_errno(env, "writeMemoryFile", ENOSPC);
  if (length > 0) memcpy(f->base + offset, data, length);
  return NULL;
}

void memory_file_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    EXPORTED_FUNCTION("createMemoryFile", create_memory_file),
    EXPORTED_FUNCTION("writeMemoryFile", write_memory_file),
    EXPORTED_FUNCTION("memoryFilePages", memory_file_pages),
  };
  DEFINE_EXPORTS(env, exports, properties);
}
