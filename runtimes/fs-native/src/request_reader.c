/*
 * A thread per connection that receives NBD requests the way a native server's connection
 * thread does: it sleeps on the socket and is woken by the client's bytes, reads a request
 * header, reads a write's payload straight into memory that is used again, and hands the
 * request to JavaScript. The event loop then never reads the socket: it gets requests, not
 * bytes, and the copying out of the socket runs beside it on another CPU.
 *
 * Why: with several connections (nbdcopy opens four when the server allows multi-conn), a
 * server whose one thread both receives and writes 256 KiB payloads leaves each client blocked
 * on its full socket while it serves the others; nbdkit drains each socket from its own thread.
 *
 * What reaches JavaScript, in stream order, through a thread-safe function (deliver_js):
 * - Buffers of request headers, several at once when they came together;
 * - a write: its header, and its payload in memory JavaScript lent (struct slot), or copied
 *   after the header when no lent buffer fits; a payload larger than PIECE_MAX comes in
 *   pieces, each on its own;
 * - for the file and memory plugins, writes the thread did itself (struct write_target) whose
 *   replies it could not send itself (struct output): their headers, for the event loop to reply;
 *   their reads the thread sends itself while it has the output (read_from_target), and they
 *   never reach JavaScript;
 * - at the end of input, null, with the errno name after a failure.
 * Bytes after a header with the wrong magic are passed on as if headers: the server drops the
 * connection at that header anyway.
 *
 * The thread reads a duplicate of the socket's descriptor (and writes a duplicate of the
 * file's) and closes it when it ends, so the event loop may close its own at any time without
 * the thread ever touching another file that took the number.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fs_native.h"

#define REQUEST_MAGIC 0x25609513u
#define COMMAND_READ 0
#define COMMAND_WRITE 1
#define HEADER_BYTES 28
/* Headers and small payloads are received into this much memory, as much as is there. */
#define STAGING_BYTES (64 * 1024)
/* A payload whose unreceived part is smaller than this is received through the staging memory. */
#define DIRECT_MIN (16 * 1024)
/* Larger write payloads are handed on in pieces of this size, so no allocation is unbounded. */
#define PIECE_MAX (32 * 1024 * 1024)
/* Requests handed on but not yet taken by the event loop before the thread waits. */
#define QUEUE_MAX 16
/* How many requests without payload one Buffer may carry. */
#define BATCH_MAX 64
/* How many buffers JavaScript may lend a reader. */
#define SLOTS_MAX 32
/* The slot number that says: a write the thread did itself (see struct write_target), told of alone. */
#define SLOT_WRITTEN (-2)
/* The slot number that says: writes the thread did are waiting in `written`. */
#define SLOT_WRITTEN_LIST (-3)
/* The slot number that says: the event loop, refused the socket's output before, may have it now. */
#define SLOT_OUTPUT_FREE (-4)
/* Reply bytes the thread may owe a client that does not read them before it stops receiving. */
#define OWED_MAX (64 * 1024)
#define SIMPLE_REPLY_MAGIC 0x67446698u
#define SIMPLE_REPLY_BYTES 16
#define STRUCTURED_REPLY_MAGIC 0x668e33efu
#define REPLY_FLAG_DONE 1
#define REPLY_TYPE_OFFSET_DATA 1
/* A structured reply's chunk header and the offset of an OFFSET_DATA chunk. */
#define READ_REPLY_HEADER_MAX (20 + 8)
#define FLAG_FUA 1

/* Why serve() stopped, besides an errno. */
#define ENDED 0
#define STOPPED (-1)

/*
 * Memory JavaScript lent for payloads (lendRequestBuffer): payloads land in buffers the event
 * loop already has, so no ArrayBuffer is made per request (each one made here would count as
 * external memory and bring on full garbage collections). Busy from the moment the thread
 * picks it until JavaScript gives it back (returnRequestBuffer).
 */
struct slot {
  uint8_t *data;
  size_t capacity;
  bool busy;
  /* Keeps the lent buffer alive while the thread may write into it. */
  napi_ref keep;
};

/*
 * A plain file that writes may go to from the thread itself (the file plugin): a write the
 * export accepts as it is (flags at most FUA when allowed, within the size and the request
 * limit) is received into the thread's own buffer, written with pwrite (then fdatasync for
 * FUA), and only its header and outcome are handed on, for the event loop to reply. Anything
 * else goes the usual way, to be checked and refused by the event loop.
 * When the file is a memory file (the memory plugin's disk, memory_file.c), the payload is
 * copied into its mapping instead, and FUA has nothing to do. Not received straight into the
 * mapping, though that would save a copy: as with nbdkit, a write cut off mid-payload must
 * leave the disk as it was.
 */
struct write_target {
  int fd; /* a duplicate, owned by the thread */
  uint64_t size;
  bool fua;
  uint32_t max_length;
  uint8_t *buffer;
  size_t capacity;
  /* The memory file that fd is, with a reference held; NULL for other files. */
  struct memory_file *memory;
  /*
   * Whether reads may be sent from fd by the thread (see read_from_target): the event loop
   * would send them from it too. Their replies are structured when `structured`.
   */
  bool reads;
  bool structured;
};

/*
 * The socket's output, shared with the event loop, for the replies to the writes the thread did
 * itself and to the reads it sends itself: sending them from here spares the event loop a wake-up
 * and a send per batch, as a native server's connection thread replies itself. The two must never
 * interleave bytes, and Node sends what it queued whenever the socket has room, so the output
 * belongs to one side at a time: to the event loop while it has bytes queued in Node (it claims
 * the output before it writes and releases it once its queue is empty), else to the thread. The
 * thread sends with MSG_DONTWAIT and keeps what the socket did not take (`owed`), sending it as
 * room comes; meanwhile the event loop may not claim, and is told once it can (SLOT_OUTPUT_FREE).
 * A write done while the event loop holds the output is replied by the event loop, as before. A
 * read reply is sent whole, outside the lock (`sending`), waiting for room as a native server's
 * send does; the event loop's claims are refused meanwhile.
 */
struct output {
  pthread_mutex_t lock;
  bool js_claimed;
  /* The event loop was refused: tell it when nothing is owed any more. */
  bool js_waiting;
  /* The thread has ended: the output is the event loop's for good. */
  bool gone;
  /* Sending failed (the client went away): replies are dropped. */
  bool broken;
  /* The thread is sending a read reply, outside the lock: the output is the thread's until it is done. */
  bool sending;
  uint8_t *owed;
  size_t owed_start, owed_end, owed_capacity;
};

struct reader {
  int sock;
  /* Only with a write target: the thread replies to its own writes when it can. */
  struct output out;
  /* Its fd is -1 when there is none. */
  struct write_target target;
  /* eventfd that wakes the thread to see `stopping`, a cleared `paused`, or a slot freed (`slot_wanted`). */
  int wake;
  atomic_bool stopping;
  atomic_bool paused;
  /* One for the thread (dropped when its thread-safe function is finalized), one for JavaScript's handle. */
  atomic_int refs;
  /* Joined when the thread-safe function is finalized (finalize_thread_function). */
  pthread_t thread;
  bool thread_started;
  napi_threadsafe_function deliver;
  /* Guards the slots and `written`. */
  pthread_mutex_t lock;
  struct slot slots[SLOTS_MAX];
  int slot_count;
  /* The thread waits for a slot to be freed: free_slot must wake it. */
  bool slot_wanted;
  /*
   * Headers of writes done to the target, not yet taken by the event loop: one message tells
   * it of all that pile up until it takes them, so it wakes once and replies in one writev.
   */
  uint8_t *written;
  size_t written_count, written_capacity;
  size_t start, end;
  /*
   * Whether the last request was a write: then the next header is received alone, as a native
   * server does, so that a following write's payload is received straight into its buffer and
   * not partly into staging and copied from there.
   */
  bool after_write;
  /* Reads the thread sent itself (read_from_target), for stopRequestReader to tell. */
  atomic_uint reads_sent;
  uint8_t staging[STAGING_BYTES];
};

/* What one call of the thread-safe function hands on. */
struct message {
  /*
   * Header(s), and a payload that found no lent buffer after its header; malloc'd. NULL for
   * the end of input (slot -1) and for SLOT_WRITTEN_LIST.
   */
  uint8_t *bytes;
  size_t length;
  /* The slot holding the payload, or -1. */
  int slot;
  uint32_t payload;
  /* At the end, or for SLOT_WRITTEN: 0, or the errno of the failure. */
  int err;
};

/* Drop the lent buffers and close the eventfd: nothing needs them once the thread has gone. */
static void release_thread_resources(napi_env env, struct reader *r) {
  for (int i = 0; i < r->slot_count; i++) napi_delete_reference(env, r->slots[i].keep);
  r->slot_count = 0;
  if (r->wake != -1) close(r->wake);
  r->wake = -1;
}

static void unref_reader(napi_env env, struct reader *r) {
  if (atomic_fetch_sub(&r->refs, 1) == 1) {
    release_thread_resources(env, r);
    free(r->written);
    free(r->out.owed);
    pthread_mutex_destroy(&r->out.lock);
    pthread_mutex_destroy(&r->lock);
    free(r);
    napi_adjust_external_memory(env, -(int64_t)sizeof *r, NULL);
  }
}

static void wake(struct reader *r) {
  /* After the thread has gone (release_thread_resources) there is nobody to wake. */
  if (r->wake == -1) return;
  uint64_t one = 1;
  while (write(r->wake, &one, sizeof one) == -1 && errno == EINTR) {
  }
}

/* A lent buffer is free again: wake the thread if it waits for one (take_slot). */
static void free_slot(struct reader *r, int index) {
  pthread_mutex_lock(&r->lock);
  r->slots[index].busy = false;
  bool wanted = r->slot_wanted;
  r->slot_wanted = false;
  pthread_mutex_unlock(&r->lock);
  if (wanted) wake(r);
}

/* ---- the thread ---- */

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool is_write(const uint8_t *header) {
  return be32(header) == REQUEST_MAGIC && (header[6] << 8 | header[7]) == COMMAND_WRITE;
}

static void drain_wake(struct reader *r) {
  uint64_t count;
  while (read(r->wake, &count, sizeof count) == -1 && errno == EINTR) {
  }
}

/* ---- replies sent by the thread (struct output) ---- */

static void put_be32(uint8_t *p, uint32_t value) {
  p[0] = value >> 24;
  p[1] = value >> 16 & 0xff;
  p[2] = value >> 8 & 0xff;
  p[3] = value & 0xff;
}

/* A successful simple reply to the request whose header is `header`, into `reply`. */
static void simple_reply(uint8_t *reply, const uint8_t *header) {
  put_be32(reply, SIMPLE_REPLY_MAGIC);
  memset(reply + 4, 0, 4);
  memcpy(reply + 8, header + 8, 8);
}

static size_t owed_bytes(const struct reader *r) {
  return r->out.owed_end - r->out.owed_start;
}

/* Send what the socket takes of the owed bytes now; with the output lock held. */
static void send_owed_locked(struct reader *r) {
  struct output *o = &r->out;
  while (o->owed_start < o->owed_end && !o->broken) {
    ssize_t n = send(r->sock, o->owed + o->owed_start, o->owed_end - o->owed_start, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    /* The client is gone: receiving will see the end. */
    if (n <= 0) o->broken = true;
    else o->owed_start += n;
  }
  o->owed_start = o->owed_end = 0;
}

/* Whether the event loop waits for the output and may have it now; with the output lock held. */
static bool output_freed_locked(struct reader *r) {
  struct output *o = &r->out;
  if (!o->js_waiting || owed_bytes(r) > 0 || o->sending) return false;
  o->js_waiting = false;
  return true;
}

static ssize_t hand_on(struct reader *r, uint8_t *bytes, size_t length, int slot, uint32_t payload, int err);

/* Tell the event loop that the output it asked for is free. */
static void tell_output_free(struct reader *r) {
  hand_on(r, NULL, 0, SLOT_OUTPUT_FREE, 0, 0);
}

/* Send what the socket takes of the owed bytes now, telling the event loop once none are left. */
static void flush_owed(struct reader *r) {
  pthread_mutex_lock(&r->out.lock);
  send_owed_locked(r);
  bool tell = output_freed_locked(r);
  pthread_mutex_unlock(&r->out.lock);
  if (tell) tell_output_free(r);
}

/*
 * Reply to a write the thread did, from here if the event loop does not hold the output, else
 * through the event loop (add_written). 1, or as hand_on.
 */
static ssize_t add_written(struct reader *r, const uint8_t *header);
static ssize_t reply_written(struct reader *r, const uint8_t *header) {
  struct output *o = &r->out;
  pthread_mutex_lock(&o->lock);
  if (o->js_claimed) {
    pthread_mutex_unlock(&o->lock);
    return add_written(r, header);
  }
  if (!o->broken) {
    if (o->owed_end + SIMPLE_REPLY_BYTES > o->owed_capacity) {
      size_t capacity = o->owed_capacity == 0 ? 4096 : 2 * o->owed_capacity;
      uint8_t *bigger = realloc(o->owed, capacity);
      if (bigger == NULL) {
        /* The event loop can queue it: its claim waits until what is owed has left. */
        pthread_mutex_unlock(&o->lock);
        return add_written(r, header);
      }
      o->owed = bigger;
      o->owed_capacity = capacity;
    }
    simple_reply(o->owed + o->owed_end, header);
    o->owed_end += SIMPLE_REPLY_BYTES;
    send_owed_locked(r);
  }
  bool tell = output_freed_locked(r);
  pthread_mutex_unlock(&o->lock);
  if (tell) tell_output_free(r);
  return 1;
}

/*
 * Sleep until the wake eventfd, or input when `input`, meanwhile sending owed bytes as the
 * socket takes them. 1 when the socket has input (or trouble for recv to report), 0 otherwise,
 * -1 when poll failed.
 */
static int sleep_on_socket(struct reader *r, bool input) {
  /* Nothing owed: nothing to send, and the event loop cannot be waiting (its claim succeeded). */
  if (owed_bytes(r) > 0) flush_owed(r);
  size_t owed = owed_bytes(r);
  short events = (input ? POLLIN : 0) | (owed > 0 ? POLLOUT : 0);
  /* A socket polled for nothing would still report a hang-up, again and again. */
  struct pollfd fds[2] = { { .fd = events != 0 ? r->sock : -1, .events = events }, { .fd = r->wake, .events = POLLIN } };
  if (poll(fds, 2, -1) == -1) return errno == EINTR ? 0 : -1;
  if (fds[1].revents & POLLIN) drain_wake(r);
  return input && (fds[0].revents & ~POLLOUT) != 0;
}

/* Sleep until the socket has bytes (true) or the reader is stopped (false). */
static bool wait_readable(struct reader *r) {
  while (!atomic_load(&r->stopping)) {
    /* On a poll failure, let recv report what is wrong. */
    if (sleep_on_socket(r, true) != 0) return true;
  }
  return false;
}

/*
 * While the event loop has asked for a pause, or the client leaves too many replies unread,
 * sleep; false when stopped instead.
 */
static bool wait_while_paused(struct reader *r) {
  while ((atomic_load(&r->paused) || owed_bytes(r) > OWED_MAX) && !atomic_load(&r->stopping)) {
    if (sleep_on_socket(r, false) == -1) return false;
  }
  return !atomic_load(&r->stopping);
}

/*
 * The smallest free lent buffer that holds `length` bytes, now busy, and its memory; -1 if no
 * lent buffer is that large. While all that are large enough are busy, wait for one: a reader
 * holds no more payloads than it has lent buffers, as a native server holds no more than its
 * threads. Owed replies are sent meanwhile: the event loop may be waiting for the output before
 * it goes on with the payloads that hold the buffers.
 */
static int take_slot(struct reader *r, size_t length, uint8_t **data) {
  for (;;) {
    int best = -1;
    bool fits = false;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->slot_count; i++) {
      struct slot *s = &r->slots[i];
      fits |= s->capacity >= length;
      if (!s->busy && s->capacity >= length && (best == -1 || s->capacity < r->slots[best].capacity)) best = i;
    }
    if (best != -1) {
      r->slots[best].busy = true;
      *data = r->slots[best].data;
    }
    r->slot_wanted = best == -1 && fits;
    pthread_mutex_unlock(&r->lock);
    if (best != -1 || !fits || atomic_load(&r->stopping)) return best;
    if (sleep_on_socket(r, false) == -1) return -1;
  }
}

/* At the end of input: send what is still owed while the client takes it, then leave the output. */
static void leave_output(struct reader *r) {
  while (owed_bytes(r) > 0 && !r->out.broken && !atomic_load(&r->stopping)) {
    if (sleep_on_socket(r, false) == -1) break;
  }
  pthread_mutex_lock(&r->out.lock);
  r->out.gone = true;
  r->out.owed_start = r->out.owed_end = 0;
  bool tell = output_freed_locked(r);
  pthread_mutex_unlock(&r->out.lock);
  if (tell) tell_output_free(r);
}

/* Receive some bytes into `into`: their count, or ENDED (0) at end of input, STOPPED, -errno. */
static ssize_t receive_some(struct reader *r, uint8_t *into, size_t length) {
  for (;;) {
    ssize_t n = recv(r->sock, into, length, MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    if (!wait_readable(r)) return STOPPED;
  }
}

/* Receive exactly `length` bytes into `into`: 1 when done, else as receive_some. */
static ssize_t receive_exactly(struct reader *r, uint8_t *into, size_t length) {
  while (length > 0) {
    ssize_t n = receive_some(r, into, length);
    if (n <= 0) return n;
    into += n;
    length -= n;
  }
  return 1;
}

/* Have at least `want` (<= STAGING_BYTES) bytes in staging: 1, or as receive_some. */
static ssize_t stage(struct reader *r, size_t want) {
  if (r->end - r->start >= want) return 1;
  if (STAGING_BYTES - r->start < want) {
    memmove(r->staging, r->staging + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  while (r->end - r->start < want) {
    size_t room = r->after_write ? r->start + want - r->end : STAGING_BYTES - r->end;
    ssize_t n = receive_some(r, r->staging + r->end, room);
    if (n <= 0) return n;
    r->end += n;
  }
  return 1;
}

/*
 * Hand a message to JavaScript, waiting while QUEUE_MAX are already waiting; STOPPED when it
 * is gone. Takes over `bytes` and the slot.
 */
static ssize_t hand_on(struct reader *r, uint8_t *bytes, size_t length, int slot, uint32_t payload, int err) {
  struct message *m = malloc(sizeof *m);
  ssize_t status = -ENOMEM;
  if (m != NULL) {
    *m = (struct message){ .bytes = bytes, .length = length, .slot = slot, .payload = payload, .err = err };
    if (napi_call_threadsafe_function(r->deliver, m, napi_tsfn_blocking) == napi_ok) return 1;
    status = STOPPED;
  }
  free(bytes);
  if (slot >= 0) free_slot(r, slot);
  free(m);
  return status;
}

/* Fill `into` with the next `length` bytes: staged ones first, then from the socket. 1, or as receive_some. */
static ssize_t receive_into(struct reader *r, uint8_t *into, size_t length) {
  size_t staged = r->end - r->start;
  ssize_t status = 1;
  if (length - (staged < length ? staged : length) < DIRECT_MIN && length <= STAGING_BYTES) {
    status = stage(r, length);
    staged = r->end - r->start;
  }
  size_t have = staged < length ? staged : length;
  memcpy(into, r->staging + r->start, have);
  r->start += have;
  return status > 0 ? receive_exactly(r, into + have, length - have) : status;
}

/* Move the staged header out of staging, into `header`. */
static void take_header(struct reader *r, uint8_t *header) {
  memcpy(header, r->staging + r->start, HEADER_BYTES);
  r->start += HEADER_BYTES;
}

/* One write request: its header, and its payload in a lent buffer if one is free, in pieces if large. */
static ssize_t receive_write(struct reader *r) {
  uint8_t header[HEADER_BYTES];
  take_header(r, header);
  uint32_t remaining = be32(header + 24);
  size_t header_length = HEADER_BYTES;
  while (remaining > 0) {
    size_t piece = remaining < PIECE_MAX ? remaining : PIECE_MAX;
    uint8_t *lent = NULL;
    int slot = piece >= DIRECT_MIN ? take_slot(r, piece, &lent) : -1;
    size_t length = header_length + (slot == -1 ? piece : 0);
    uint8_t *bytes = malloc(length > 0 ? length : 1);
    if (bytes == NULL) {
      if (slot >= 0) free_slot(r, slot);
      return -ENOMEM;
    }
    memcpy(bytes, header, header_length);
    ssize_t status = receive_into(r, slot == -1 ? bytes + header_length : lent, piece);
    if (status <= 0) {
      free(bytes);
      if (slot >= 0) free_slot(r, slot);
      return status;
    }
    status = hand_on(r, bytes, length, slot, slot == -1 ? 0 : (uint32_t)piece, 0);
    if (status <= 0) return status;
    remaining -= piece;
    header_length = 0;
    if (remaining > 0 && !wait_while_paused(r)) return STOPPED;
  }
  return 1;
}

/* The staged headers, up to the next write or read the thread sends itself, as one Buffer. */
static bool target_reads(const struct reader *r, const uint8_t *header);
static ssize_t receive_headers(struct reader *r) {
  size_t count = 1;
  while (count < BATCH_MAX && r->end - r->start >= (count + 1) * HEADER_BYTES &&
         !is_write(r->staging + r->start + count * HEADER_BYTES) &&
         !target_reads(r, r->staging + r->start + count * HEADER_BYTES)) {
    count++;
  }
  size_t length = count * HEADER_BYTES;
  uint8_t *bytes = malloc(length);
  if (bytes == NULL) return -ENOMEM;
  memcpy(bytes, r->staging + r->start, length);
  r->start += length;
  return hand_on(r, bytes, length, -1, 0, 0);
}

static uint64_t be64(const uint8_t *p) {
  return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* Whether the write whose header is staged can go to the write target as it is. */
static bool target_takes(const struct reader *r, const uint8_t *header) {
  const struct write_target *t = &r->target;
  uint16_t flags = header[4] << 8 | header[5];
  uint64_t offset = be64(header + 16);
  uint32_t length = be32(header + 24);
  return t->fd != -1 && (flags & ~(t->fua ? FLAG_FUA : 0)) == 0 && length <= t->max_length && offset <= t->size &&
         length <= t->size - offset;
}

/* pwrite all of it: 0, or the errno. */
static int write_fully(int fd, const uint8_t *data, size_t length, uint64_t offset) {
  while (length > 0) {
    ssize_t n = pwrite(fd, data, length, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    data += n;
    length -= n;
    offset += n;
  }
  return 0;
}

/* Hand on a copy of one request header, with `slot` and `err` (see struct message). */
static ssize_t hand_on_header(struct reader *r, const uint8_t *header, int slot, int err) {
  uint8_t *copy = malloc(HEADER_BYTES);
  if (copy == NULL) return -ENOMEM;
  memcpy(copy, header, HEADER_BYTES);
  return hand_on(r, copy, HEADER_BYTES, slot, 0, err);
}

/* Hand on one write done to the target, alone (with its error, if any). */
static ssize_t hand_on_written(struct reader *r, const uint8_t *header, int err) {
  return hand_on_header(r, header, SLOT_WRITTEN, err);
}

/*
 * Add a successful write to `written`; only the first since the event loop last took them
 * makes a message.
 */
static ssize_t add_written(struct reader *r, const uint8_t *header) {
  pthread_mutex_lock(&r->lock);
  bool tell = r->written_count == 0;
  if (r->written_count == r->written_capacity) {
    size_t capacity = r->written_capacity == 0 ? 64 : 2 * r->written_capacity;
    uint8_t *bigger = realloc(r->written, capacity * HEADER_BYTES);
    if (bigger == NULL) {
      pthread_mutex_unlock(&r->lock);
      return hand_on_written(r, header, 0);
    }
    r->written = bigger;
    r->written_capacity = capacity;
  }
  memcpy(r->written + r->written_count * HEADER_BYTES, header, HEADER_BYTES);
  r->written_count++;
  pthread_mutex_unlock(&r->lock);
  return tell ? hand_on(r, NULL, 0, SLOT_WRITTEN_LIST, 0, 0) : 1;
}

/* One write for the write target: received, written, and handed on with its outcome. */
static ssize_t write_to_target(struct reader *r) {
  struct write_target *t = &r->target;
  uint8_t header[HEADER_BYTES];
  take_header(r, header);
  uint32_t length = be32(header + 24);
  uint64_t offset = be64(header + 16);
  if (length > t->capacity) {
    uint8_t *bigger = realloc(t->buffer, length);
    if (bigger == NULL) return -ENOMEM;
    t->buffer = bigger;
    t->capacity = length;
  }
  ssize_t status = receive_into(r, t->buffer, length);
  if (status <= 0) return status;
  if (t->memory != NULL) {
    memcpy(t->memory->base + offset, t->buffer, length);
    return reply_written(r, header);
  }
  int err = write_fully(t->fd, t->buffer, length, offset);
  if (err == 0 && (header[5] & FLAG_FUA) && fdatasync(t->fd) == -1) err = errno;
  return err == 0 ? reply_written(r, header) : hand_on_written(r, header, err);
}

/* ---- reads sent by the thread ---- */

/*
 * Whether the staged header is a read the thread may send from the target itself: one the event
 * loop would send from the same file, with no flags, within the export and the request limit.
 * Anything else goes the usual way, to be checked (and refused) by the event loop.
 */
static bool target_reads(const struct reader *r, const uint8_t *header) {
  const struct write_target *t = &r->target;
  uint16_t flags = header[4] << 8 | header[5];
  uint16_t command = header[6] << 8 | header[7];
  uint64_t offset = be64(header + 16);
  uint32_t length = be32(header + 24);
  return t->fd != -1 && t->reads && command == COMMAND_READ && flags == 0 && length > 0 && length <= t->max_length &&
         offset <= t->size && length <= t->size - offset;
}

/*
 * Sleep until the socket has room (true), or the reader is stopped (false). Nothing is owed
 * while a read reply is being sent, so there is nothing else to send meanwhile.
 */
static bool wait_writable(struct reader *r) {
  while (!atomic_load(&r->stopping)) {
    struct pollfd fds[2] = { { .fd = r->sock, .events = POLLOUT }, { .fd = r->wake, .events = POLLIN } };
    if (poll(fds, 2, -1) == -1) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents & POLLIN) drain_wake(r);
    /* On trouble (a hang-up, an error), let the send report what is wrong. */
    if (fds[0].revents != 0) return true;
  }
  return false;
}

/* Send all `length` bytes of `data`, waiting for room as a native server's send does: 0, or errno. */
static int send_all(struct reader *r, const uint8_t *data, size_t length, int64_t *sent) {
  size_t done = 0;
  while (done < length) {
    struct iovec part = { .iov_base = (void *)(data + done), .iov_len = length - done };
    int64_t before = *sent;
    int err = send_parts(r->sock, &part, 1, sent);
    if (err != 0) return err;
    done += (size_t)(*sent - before);
    if (done < length && !wait_writable(r)) return ECANCELED;
  }
  return 0;
}

/*
 * The whole reply to a read of the target: `reply` (its header), then `count` bytes from
 * `offset`, from the memory file's mapping or with sendfile; past the end of a file that has
 * shrunk, zeroes (as the event loop sends). 0, or an errno.
 */
static int send_read_reply(struct reader *r, uint8_t *reply, size_t reply_length, uint64_t offset, uint32_t count,
                           int64_t *sent) {
  static const uint8_t zeroes[64 * 1024];
  int64_t total = (int64_t)reply_length + count;
  while (*sent < total) {
    size_t head_done = *sent < (int64_t)reply_length ? (size_t)*sent : reply_length;
    uint32_t data_done = (uint32_t)(*sent - (int64_t)head_done);
    struct iovec head = { .iov_base = reply + head_done, .iov_len = reply_length - head_done };
    int64_t before = *sent;
    bool ended = false;
    const char *syscall;
    int err = r->target.memory != NULL
                  ? memory_file_send(r->target.memory, r->sock, head, offset + data_done, count - data_done, sent)
                  : send_file_reply(r->sock, r->target.fd, head, (int64_t)(offset + data_done), count - data_done, sent,
                                    &syscall, &ended);
    if (err != 0) return err;
    if (ended) {
      while (*sent < total) {
        int64_t rest = total - *sent;
        err = send_all(r, zeroes, rest < (int64_t)sizeof zeroes ? (size_t)rest : sizeof zeroes, sent);
        if (err != 0) return err;
      }
    } else if (*sent == before && !wait_writable(r)) {
      return ECANCELED;
    }
  }
  return 0;
}

/* The header of a successful reply to the read whose request header is `header`; its length. */
static size_t read_reply_header(const struct reader *r, const uint8_t *header, uint8_t *reply) {
  if (!r->target.structured) {
    simple_reply(reply, header);
    return SIMPLE_REPLY_BYTES;
  }
  put_be32(reply, STRUCTURED_REPLY_MAGIC);
  reply[4] = 0;
  reply[5] = REPLY_FLAG_DONE;
  reply[6] = 0;
  reply[7] = REPLY_TYPE_OFFSET_DATA;
  memcpy(reply + 8, header + 8, 8);
  put_be32(reply + 16, be32(header + 24) + 8);
  memcpy(reply + 20, header + 16, 8);
  return READ_REPLY_HEADER_MAX;
}

/*
 * One read of the target, sent from here while the output is the thread's, as a native
 * server's connection thread sends: blocking until the client has taken it, so the event loop
 * is not woken for it, and no reply data is copied. While the event loop holds the output or
 * waits for it (or replies are owed), the read goes to it like any request. A read whose data
 * cannot be had (nothing sent yet) goes to the event loop too, which replies with the error; one
 * cut off halfway ends the connection.
 */
static ssize_t read_from_target(struct reader *r) {
  uint8_t header[HEADER_BYTES];
  struct output *o = &r->out;
  pthread_mutex_lock(&o->lock);
  /* Not while the event loop waits for the output either: its replies would wait behind every read. */
  bool ours = !o->js_claimed && !o->js_waiting && !o->broken && !o->gone && owed_bytes(r) == 0;
  if (ours) o->sending = true;
  pthread_mutex_unlock(&o->lock);
  if (!ours) return receive_headers(r);
  take_header(r, header);
  uint8_t reply[READ_REPLY_HEADER_MAX];
  size_t reply_length = read_reply_header(r, header, reply);
  int64_t sent = 0;
  int err = send_read_reply(r, reply, reply_length, be64(header + 16), be32(header + 24), &sent);
  pthread_mutex_lock(&o->lock);
  o->sending = false;
  if (err != 0 && sent > 0) o->broken = true;
  bool tell = output_freed_locked(r);
  pthread_mutex_unlock(&o->lock);
  if (tell) tell_output_free(r);
  if (err == ECANCELED) return STOPPED;
  if (err != 0 && sent > 0) return -err;
  if (err != 0) return hand_on_header(r, header, -1, 0);
  atomic_fetch_add(&r->reads_sent, 1);
  return 1;
}

/* Receive and hand on requests until the end of input, a failure, or stop. */
static ssize_t serve(struct reader *r) {
  for (;;) {
    if (!wait_while_paused(r)) return STOPPED;
    ssize_t status = stage(r, HEADER_BYTES);
    if (status > 0) {
      const uint8_t *header = r->staging + r->start;
      r->after_write = is_write(header) && be32(header + 24) > 0;
      if (r->after_write) status = target_takes(r, header) ? write_to_target(r) : receive_write(r);
      else status = target_reads(r, header) ? read_from_target(r) : receive_headers(r);
    }
    if (status <= 0) return status;
  }
}

/* Close the thread's duplicates of the socket and the write target, and let go of its mapping. */
static void close_sockets(struct reader *r) {
  if (r->sock != -1) close(r->sock);
  if (r->target.fd != -1) close(r->target.fd);
  if (r->target.memory != NULL) memory_file_unref(r->target.memory);
}

/* The memory file `fd` is, if it holds all `size` bytes of the export (else pwrite it is). */
static struct memory_file *memory_file_covering(int fd, uint64_t size) {
  struct memory_file *f = memory_file_of(fd);
  if (f != NULL && f->length < size) {
    memory_file_unref(f);
    f = NULL;
  }
  return f;
}

static void *reader_thread(void *arg) {
  struct reader *r = arg;
  ssize_t outcome = serve(r);
  /* A wait that failed without a stop must still end the connection. */
  if (outcome == STOPPED && !atomic_load(&r->stopping)) outcome = -EIO;
  /* Replies owed go before the end: the event loop closes the connection at the end. */
  leave_output(r);
  close_sockets(r);
  free(r->target.buffer);
  /* Leftover staged bytes are a partial header: the client ended mid-request. */
  if (outcome != STOPPED) hand_on(r, NULL, 0, -1, 0, outcome == ENDED ? 0 : (int)-outcome);
  napi_release_threadsafe_function(r->deliver, napi_tsfn_release);
  return NULL;
}

/* ---- the event loop's side ---- */

/* Calls deliver(bytes, slot, payloadLength, errorCode, message): see startRequestReader. */
static void deliver_js(napi_env env, napi_value callback, void *context, void *data) {
  struct reader *r = context;
  struct message *m = data;
  if (env != NULL) {
    napi_value argv[5], undefined;
    napi_get_undefined(env, &undefined);
    argv[3] = argv[4] = undefined;
    if (m->bytes == NULL) {
      napi_get_null(env, &argv[0]);
      if (m->slot == -1 && m->err != 0) napi_create_string_utf8(env, errno_code(m->err), NAPI_AUTO_LENGTH, &argv[3]);
    } else if (napi_create_buffer_copy(env, m->length, m->bytes, NULL, &argv[0]) != napi_ok) {
      /* Ends the connection: what follows cannot be handed on in order. */
      napi_get_null(env, &argv[0]);
      napi_create_string_utf8(env, errno_code(ENOMEM), NAPI_AUTO_LENGTH, &argv[3]);
    }
    if (m->slot == SLOT_WRITTEN && m->err != 0) {
      napi_create_string_utf8(env, errno_code(m->err), NAPI_AUTO_LENGTH, &argv[3]);
      napi_create_string_utf8(env, strerror(m->err), NAPI_AUTO_LENGTH, &argv[4]);
    }
    napi_create_int32(env, m->slot, &argv[1]);
    napi_create_uint32(env, m->payload, &argv[2]);
    if (napi_call_function(env, undefined, callback, 5, argv, NULL) == napi_ok) m->slot = -1;
  }
  /* Not delivered (teardown, or the call failed): nobody will give the slot back. */
  if (m->slot >= 0) free_slot(r, m->slot);
  free(m->bytes);
  free(m);
}

/* Finalizer of JavaScript's handle, which holds one reference. */
static void finalize_reader(napi_env env, void *data, void *hint) {
  (void)hint;
  unref_reader(env, data);
}

/*
 * Finalizer of the thread-safe function, which holds the thread's reference. Usually the thread
 * has just released the function, its last act, and the join returns at once. But when Node
 * tears the environment down (the process exiting), it finalizes the function while the thread
 * may still run: the thread is stopped and waited for, or it would use the reader (and the
 * function) after both are freed.
 */
static void finalize_thread_function(napi_env env, void *data, void *hint) {
  (void)hint;
  struct reader *r = data;
  if (r->thread_started) {
    atomic_store(&r->stopping, true);
    wake(r);
    pthread_join(r->thread, NULL);
  }
  /*
   * JavaScript's handle keeps the rest until it is collected, which may be long after: a
   * connection's eventfd and lent buffers must not wait for that (a client reconnecting in a
   * loop piled up thousands of descriptors).
   */
  release_thread_resources(env, r);
  unref_reader(env, r);
}

/* The reader handle that is the first argument, and the second argument if `second` is given. */
static struct reader *get_reader(napi_env env, napi_callback_info info, napi_value *second) {
  napi_value argv[2];
  size_t argc = 2;
  void *r = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < (second ? 2 : 1) ||
      napi_get_value_external(env, argv[0], &r) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a request reader");
    return NULL;
  }
  if (second != NULL) *second = argv[1];
  return r;
}

/* A boolean property that may be left out (false); false when it is something else. */
static bool optional_bool(napi_env env, napi_value value, bool *result) {
  napi_valuetype type;
  *result = false;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  return type == napi_undefined || napi_get_value_bool(env, value, result) == napi_ok;
}

/*
 * The optional write target argument: {fd, size: bigint, fua: boolean, maxLength, reads?: boolean,
 * structured?: boolean}.
 */
static bool get_write_target(napi_env env, napi_value value, struct write_target *t, int *file) {
  napi_valuetype type;
  napi_value fd, size, fua, max_length, reads, structured;
  bool lossless;
  *file = -1;
  if (napi_typeof(env, value, &type) != napi_ok) return false;
  if (type == napi_undefined) return true;
  return type == napi_object && napi_get_named_property(env, value, "fd", &fd) == napi_ok &&
         napi_get_value_int32(env, fd, file) == napi_ok && napi_get_named_property(env, value, "size", &size) == napi_ok &&
         napi_get_value_bigint_uint64(env, size, &t->size, &lossless) == napi_ok && lossless &&
         napi_get_named_property(env, value, "fua", &fua) == napi_ok && napi_get_value_bool(env, fua, &t->fua) == napi_ok &&
         napi_get_named_property(env, value, "maxLength", &max_length) == napi_ok &&
         napi_get_value_uint32(env, max_length, &t->max_length) == napi_ok &&
         napi_get_named_property(env, value, "reads", &reads) == napi_ok && optional_bool(env, reads, &t->reads) &&
         napi_get_named_property(env, value, "structured", &structured) == napi_ok &&
         optional_bool(env, structured, &t->structured);
}

/*
 * startRequestReader(socketFd, deliver, target?): start the thread; returns its handle. What
 * `deliver` is called with is in index.d.cts. The socket must be one the event loop no longer
 * reads.
 */
static napi_value start_request_reader(napi_env env, napi_callback_info info) {
  napi_value argv[3], name, handle;
  size_t argc = 3;
  int sock, file;
  napi_valuetype type;
  struct write_target target = { .fd = -1 };
  file = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int32(env, argv[0], &sock) != napi_ok || napi_typeof(env, argv[1], &type) != napi_ok ||
      type != napi_function || (argc > 2 && !get_write_target(env, argv[2], &target, &file))) {
    napi_throw_type_error(env, NULL,
                          "expected (socketFd, deliver: function, target?: {fd, size: bigint, fua, maxLength, reads?, structured?})");
    return NULL;
  }
  struct reader *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_errno(env, "calloc", ENOMEM);
  r->target = target;
  r->target.fd = -1;
  r->sock = -1;
  r->wake = -1;
  const char *failed = NULL;
  if (file != -1 && (r->target.fd = fcntl(file, F_DUPFD_CLOEXEC, 0)) == -1) failed = "dup";
  else if ((r->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0)) == -1) failed = "dup";
  else if ((r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) == -1) failed = "eventfd";
  if (failed != NULL) {
    int err = errno;
    close_sockets(r);
    if (r->wake != -1) close(r->wake);
    free(r);
    return throw_errno(env, failed, err);
  }
  if (file != -1) r->target.memory = memory_file_covering(file, target.size);
  atomic_init(&r->refs, 2);
  /* The reader is mostly its staging area: let V8 count it, so that garbage handles are collected. */
  napi_adjust_external_memory(env, (int64_t)sizeof *r, NULL);
  pthread_mutex_init(&r->lock, NULL);
  pthread_mutex_init(&r->out.lock, NULL);
  /* Replies the event loop queued before may not have left yet: it releases the output once they have. */
  r->out.js_claimed = true;
  napi_create_string_utf8(env, "nbdkit-ts request reader", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, QUEUE_MAX, 1, r, finalize_thread_function, r,
                                      deliver_js, &r->deliver) != napi_ok) {
    close_sockets(r);
    close(r->wake);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->out.lock);
    free(r);
    napi_adjust_external_memory(env, -(int64_t)sizeof *r, NULL);
    napi_throw_error(env, "EIO", "cannot create the request reader's thread-safe function");
    return NULL;
  }
  /* The socket keeps the event loop alive, not this. */
  napi_unref_threadsafe_function(env, r->deliver);
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, 256 * 1024);
  int err = pthread_create(&r->thread, &attributes, reader_thread, r);
  pthread_attr_destroy(&attributes);
  r->thread_started = err == 0;
  if (err != 0) {
    close_sockets(r);
    /* Finalizing the thread-safe function drops one reference; the other is dropped here. */
    napi_release_threadsafe_function(r->deliver, napi_tsfn_abort);
    unref_reader(env, r);
    return throw_errno(env, "pthread_create", err);
  }
  if (napi_create_external(env, r, finalize_reader, NULL, &handle) != napi_ok) {
    napi_throw_error(env, "EIO", "cannot create the request reader's handle");
    return NULL;
  }
  return handle;
}

/* pauseRequestReader(handle): receive nothing after the request in progress until resumed. */
static napi_value pause_request_reader(napi_env env, napi_callback_info info) {
  struct reader *r = get_reader(env, info, NULL);
  if (r != NULL) atomic_store(&r->paused, true);
  return NULL;
}

/* Set one of the thread's flags and wake it to see it. */
static void set_and_wake(struct reader *r, atomic_bool *flag, bool value) {
  atomic_store(flag, value);
  wake(r);
}

static napi_value resume_request_reader(napi_env env, napi_callback_info info) {
  struct reader *r = get_reader(env, info, NULL);
  if (r != NULL) set_and_wake(r, &r->paused, false);
  return NULL;
}

/*
 * lendRequestBuffer(handle, buffer): payloads may be received into `buffer` from now on, for as
 * long as the reader lives. Returns its slot number, or -1 when the reader has enough already.
 */
static napi_value lend_request_buffer(napi_env env, napi_callback_info info) {
  napi_value buffer, result;
  struct reader *r = get_reader(env, info, &buffer);
  size_t length;
  void *data;
  if (r == NULL) return NULL;
  if (!uint8_array_of(env, buffer, &data, &length)) {
    napi_throw_type_error(env, NULL, "expected (reader, buffer: Uint8Array)");
    return NULL;
  }
  int index = -1;
  napi_ref keep;
  if (r->slot_count < SLOTS_MAX && napi_create_reference(env, buffer, 1, &keep) == napi_ok) {
    pthread_mutex_lock(&r->lock);
    index = r->slot_count;
    r->slots[index] = (struct slot){ .data = data, .capacity = length, .busy = false, .keep = keep };
    r->slot_count++;
    pthread_mutex_unlock(&r->lock);
  }
  napi_create_int32(env, index, &result);
  return result;
}

/* returnRequestBuffer(handle, slot): the payload in that slot is no longer used. */
static napi_value return_request_buffer(napi_env env, napi_callback_info info) {
  napi_value argument;
  struct reader *r = get_reader(env, info, &argument);
  int32_t index;
  if (r == NULL) return NULL;
  if (napi_get_value_int32(env, argument, &index) != napi_ok || index < 0 || index >= r->slot_count) {
    napi_throw_range_error(env, NULL, "no such lent buffer");
    return NULL;
  }
  free_slot(r, index);
  return NULL;
}

/* takeWrittenRequests(handle): the headers of the writes done since last time, as one Buffer, or null. */
static napi_value take_written_requests(napi_env env, napi_callback_info info) {
  napi_value result;
  struct reader *r = get_reader(env, info, NULL);
  if (r == NULL) return NULL;
  pthread_mutex_lock(&r->lock);
  napi_status status = r->written_count == 0
                         ? napi_get_null(env, &result)
                         : napi_create_buffer_copy(env, r->written_count * HEADER_BYTES, r->written, NULL, &result);
  if (status == napi_ok) r->written_count = 0;
  pthread_mutex_unlock(&r->lock);
  if (status != napi_ok) {
    napi_throw_error(env, "ENOMEM", "cannot hand on the written requests");
    return NULL;
  }
  return result;
}

/*
 * claimReplyOutput(handle): true when the event loop may queue bytes on the socket now (until
 * releaseReplyOutput); false when the thread still owes bytes, in which case it tells the event
 * loop once it owes none (slot SLOT_OUTPUT_FREE).
 */
static napi_value claim_reply_output(napi_env env, napi_callback_info info) {
  napi_value result;
  struct reader *r = get_reader(env, info, NULL);
  if (r == NULL) return NULL;
  struct output *o = &r->out;
  pthread_mutex_lock(&o->lock);
  bool claimed = o->gone || (o->owed_end == o->owed_start && !o->sending);
  if (claimed) o->js_claimed = true;
  else o->js_waiting = true;
  pthread_mutex_unlock(&o->lock);
  napi_get_boolean(env, claimed, &result);
  return result;
}

/* releaseReplyOutput(handle): the event loop has nothing queued on the socket any more. */
static napi_value release_reply_output(napi_env env, napi_callback_info info) {
  struct reader *r = get_reader(env, info, NULL);
  if (r != NULL) {
    pthread_mutex_lock(&r->out.lock);
    r->out.js_claimed = false;
    pthread_mutex_unlock(&r->out.lock);
  }
  return NULL;
}

/*
 * stopRequestReader(handle): end the thread soon; nothing more is delivered after the calls
 * queued. Returns how many reads the thread sent itself.
 */
static napi_value stop_request_reader(napi_env env, napi_callback_info info) {
  napi_value result;
  struct reader *r = get_reader(env, info, NULL);
  if (r == NULL) return NULL;
  set_and_wake(r, &r->stopping, true);
  napi_create_uint32(env, atomic_load(&r->reads_sent), &result);
  return result;
}

void request_reader_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    EXPORTED_FUNCTION("startRequestReader", start_request_reader),
    EXPORTED_FUNCTION("pauseRequestReader", pause_request_reader),
    EXPORTED_FUNCTION("resumeRequestReader", resume_request_reader),
    EXPORTED_FUNCTION("stopRequestReader", stop_request_reader),
    EXPORTED_FUNCTION("lendRequestBuffer", lend_request_buffer),
    EXPORTED_FUNCTION("returnRequestBuffer", return_request_buffer),
    EXPORTED_FUNCTION("takeWrittenRequests", take_written_requests),
    EXPORTED_FUNCTION("claimReplyOutput", claim_reply_output),
    EXPORTED_FUNCTION("releaseReplyOutput", release_reply_output),
  };
  DEFINE_EXPORTS(env, exports, properties);
}
