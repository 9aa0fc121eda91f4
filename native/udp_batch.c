/*
 * Batched UDP for rrdns: one socket, read with recvmmsg(2) and answered with
 * sendmmsg(2), a batch of datagrams per system call instead of one. Node's
 * dgram costs a receive callback, a Buffer and a send request per datagram;
 * under load that is most of the server's CPU (issue 11's profile: ~49% in
 * dgram's send, ~44% in libuv's receive path, < 3% answering).
 *
 * The socket is watched with a uv_poll_t on the loop of the thread that
 * opened it (main or a worker thread). When it is readable, up to `batch`
 * datagrams are read into the receive buffer (one slot of `recvSlot` octets
 * each), their lengths and senders are written into the meta array, and the
 * JavaScript callback is called once with the count. It answers each
 * datagram into its slot of the send buffer and writes the answer's length
 * into the meta array (0: no answer). The answers are then sent in one
 * sendmmsg to the addresses they came from (kept here, never rebuilt).
 * All three buffers are ArrayBuffers the JavaScript side allocated and
 * handed over once; nothing is allocated per datagram on either side.
 *
 * Error paths:
 * - EAGAIN/EWOULDBLOCK on send (the socket's send buffer is full): the rest
 *   of the batch stays queued in place; reading stops and the poll waits for
 *   POLLOUT, then the queue is flushed and reading resumes. So backpressure
 *   is the kernel's receive buffer, and nothing is dropped by us.
 * - ENOBUFS and any error of one message (sendmmsg stops at the first
 *   message that fails: EPERM from a firewall, EINVAL, EACCES, ...): that
 *   message is dropped and counted by errno; the rest of the batch goes on.
 * - recvmmsg errors other than EAGAIN/EINTR: counted by errno, the poll
 *   tries again on the next readiness.
 * - An exception thrown by the callback: cleared and counted (the batch's
 *   answers are dropped); the socket goes on.
 * - close() during the callback: the batch is dropped, the socket closes
 *   once the callback has returned.
 * - A buffer detached by JavaScript (transferred): the socket stops reading
 *   (the memory is no longer ours to write) and reports it through the
 *   callback with a count of -1.
 * - The environment going away (a worker thread terminated): an async
 *   cleanup hook stops the poll and closes the socket.
 *
 * Linux only (recvmmsg/sendmmsg). rrdns falls back to node:dgram when this
 * addon is not built or cannot load (src/wire/udp-batch.ts).
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 256
/* uint32 cells per message in the meta array: length, family (4/6), port, address words 0..3, answer length. */
#define META_STRIDE 8
/* Batches read per readiness before the loop gets a turn (timers, messages from the main thread). */
#define ROUNDS_PER_POLL 16
#define ERRNO_SLOTS 256

enum { ST_RECEIVED, ST_SENT, ST_BATCHES, ST_SEND_WAITS, ST_DROPPED, ST_CALLBACK_ERRORS, ST_RECV_ERRORS, ST_TRUNCATED, ST_COUNT };

typedef struct sock {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int events;
  int close_started;
  int in_callback;
  int closing;
  int tearing_down;
  napi_ref recv_ref, send_ref, meta_ref, cb_ref;
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup;
  uint8_t *recv;
  uint8_t *send;
  uint32_t *meta;
  uint32_t batch, recv_slot, send_slot;
  uint32_t pend_from, pend_count;
  /* Fault injection for the tests (injectSendErrors): the next inject_count sendmmsg calls fail with inject_errno. */
  int inject_errno;
  uint32_t inject_count;
  double stats[ST_COUNT];
  double send_errno[ERRNO_SLOTS];
  double recv_errno[ERRNO_SLOTS];
  struct mmsghdr rm[MAX_BATCH];
  struct mmsghdr sm[MAX_BATCH];
  struct iovec riov[MAX_BATCH];
  struct iovec siov[MAX_BATCH];
  struct sockaddr_storage addr[MAX_BATCH];
} sock_t;

static void count_errno(double *table, int err) {
  table[(err > 0 && err < ERRNO_SLOTS) ? err : 0]++;
}

static void on_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  if (!s->tearing_down) {
    /* References and the async context belong to a live environment; at teardown it frees them itself. */
    napi_delete_reference(s->env, s->recv_ref);
    napi_delete_reference(s->env, s->send_ref);
    napi_delete_reference(s->env, s->meta_ref);
    napi_delete_reference(s->env, s->cb_ref);
    napi_async_destroy(s->env, s->async_context);
  }
  napi_remove_async_cleanup_hook(s->cleanup);
  free(s);
}

static void start_close(sock_t *s) {
  if (s->close_started) return;
  s->close_started = 1;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_closed);
}

static void on_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  sock_t *s = (sock_t *)arg;
  s->tearing_down = 1;
  s->closing = 1;
  if (s->close_started) return; /* on_closed will remove the hook */
  start_close(s);
}

static void set_events(sock_t *s, int events);

/* Sends the queued part of the batch. 1: all sent (or dropped); 0: the socket's buffer is full, wait for POLLOUT. */
static int flush(sock_t *s) {
  while (s->pend_from < s->pend_count) {
    int r;
    if (s->inject_count > 0) {
      s->inject_count--;
      errno = s->inject_errno;
      r = -1;
    } else {
      r = sendmmsg(s->fd, s->sm + s->pend_from, s->pend_count - s->pend_from, MSG_DONTWAIT);
    }
    if (r > 0) {
      s->stats[ST_SENT] += r;
      s->pend_from += (uint32_t)r;
      continue;
    }
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      s->stats[ST_SEND_WAITS]++;
      return 0;
    }
    /* This message failed on its own (ENOBUFS, EPERM, EINVAL, ...): drop it, send the rest. */
    count_errno(s->send_errno, err);
    s->stats[ST_DROPPED]++;
    s->pend_from++;
  }
  return 1;
}

static int buffers_attached(sock_t *s) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return 0;
  napi_ref refs[3] = {s->recv_ref, s->send_ref, s->meta_ref};
  int ok = 1;
  for (int i = 0; i < 3 && ok; i++) {
    napi_value v;
    bool detached = true;
    if (napi_get_reference_value(s->env, refs[i], &v) != napi_ok || v == NULL) ok = 0;
    else if (napi_is_detached_arraybuffer(s->env, v, &detached) != napi_ok || detached) ok = 0;
  }
  napi_close_handle_scope(s->env, scope);
  return ok;
}

/* Calls the JavaScript callback with `n`; returns 0 when the environment can run no more JavaScript. */
static int call_js(sock_t *s, int32_t n) {
  napi_handle_scope scope;
  if (napi_open_handle_scope(s->env, &scope) != napi_ok) return 0;
  int ok = 1;
  napi_value cb, recv, arg, result;
  if (napi_get_reference_value(s->env, s->cb_ref, &cb) != napi_ok || cb == NULL || napi_get_global(s->env, &recv) != napi_ok || napi_create_int32(s->env, n, &arg) != napi_ok) {
    ok = 0;
  } else {
    s->in_callback = 1;
    napi_status st = napi_make_callback(s->env, s->async_context, recv, cb, 1, &arg, &result);
    s->in_callback = 0;
    if (st == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(s->env, &exc);
      s->stats[ST_CALLBACK_ERRORS]++;
      ok = 2;
    } else if (st != napi_ok) {
      ok = 0;
    }
  }
  napi_close_handle_scope(s->env, scope);
  return ok;
}

static void read_batches(sock_t *s) {
  for (int round = 0; round < ROUNDS_PER_POLL && !s->closing; round++) {
    for (uint32_t i = 0; i < s->batch; i++) {
      struct msghdr *h = &s->rm[i].msg_hdr;
      h->msg_name = &s->addr[i];
      h->msg_namelen = sizeof(s->addr[i]);
      h->msg_iov = &s->riov[i];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
      s->riov[i].iov_base = s->recv + (size_t)i * s->recv_slot;
      s->riov[i].iov_len = s->recv_slot;
    }
    int n = recvmmsg(s->fd, s->rm, s->batch, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        count_errno(s->recv_errno, errno);
        s->stats[ST_RECV_ERRORS]++;
      }
      return;
    }
    if (n == 0) return;
    s->stats[ST_RECEIVED] += n;
    s->stats[ST_BATCHES]++;
    for (int i = 0; i < n; i++) {
      uint32_t *m = s->meta + (size_t)i * META_STRIDE;
      struct sockaddr_storage *a = &s->addr[i];
      uint32_t len = s->rm[i].msg_len;
      if (s->rm[i].msg_hdr.msg_flags & MSG_TRUNC) s->stats[ST_TRUNCATED]++;
      m[0] = len;
      m[7] = 0;
      if (a->ss_family == AF_INET) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)a;
        m[1] = 4;
        m[2] = ntohs(v4->sin_port);
        m[3] = ntohl(v4->sin_addr.s_addr);
        m[4] = m[5] = m[6] = 0;
      } else if (a->ss_family == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)a;
        const uint8_t *b = v6->sin6_addr.s6_addr;
        m[2] = ntohs(v6->sin6_port);
        uint32_t w[4];
        for (int k = 0; k < 4; k++) w[k] = ((uint32_t)b[4 * k] << 24) | ((uint32_t)b[4 * k + 1] << 16) | ((uint32_t)b[4 * k + 2] << 8) | b[4 * k + 3];
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
          /* A dual-stack socket's IPv4 client counts as IPv4 (as src/zone/address.ts parses ::ffff:a.b.c.d). */
          m[1] = 4;
          m[3] = w[3];
          m[4] = m[5] = m[6] = 0;
        } else {
          m[1] = 6;
          m[3] = w[0];
          m[4] = w[1];
          m[5] = w[2];
          m[6] = w[3];
        }
      } else {
        m[1] = 0;
        m[2] = 0;
        m[3] = m[4] = m[5] = m[6] = 0;
      }
    }
    if (!buffers_attached(s)) {
      s->closing = 1;
      uv_poll_stop(&s->poll);
      call_js(s, -1);
      return;
    }
    int called = call_js(s, n);
    if (called == 0) {
      s->closing = 1;
      return;
    }
    if (s->closing) {
      /* close() from the callback: this batch's answers are not sent. */
      s->stats[ST_DROPPED] += n;
      return;
    }
    if (called == 2) continue; /* the callback threw: its answers are not trusted */
    uint32_t q = 0;
    for (int i = 0; i < n; i++) {
      uint32_t out = s->meta[(size_t)i * META_STRIDE + 7];
      if (out == 0) continue;
      if (out > s->send_slot) {
        /* Cannot happen (UDP answers are at most EDNS_UDP_SIZE); never send past a slot. */
        s->stats[ST_DROPPED]++;
        continue;
      }
      struct msghdr *h = &s->sm[q].msg_hdr;
      h->msg_name = &s->addr[i];
      h->msg_namelen = s->rm[i].msg_hdr.msg_namelen;
      h->msg_iov = &s->siov[q];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
      s->siov[q].iov_base = s->send + (size_t)i * s->send_slot;
      s->siov[q].iov_len = out;
      q++;
    }
    s->pend_from = 0;
    s->pend_count = q;
    if (!flush(s)) {
      set_events(s, UV_WRITABLE);
      return;
    }
    if ((uint32_t)n < s->batch) return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_t *s = (sock_t *)h->data;
  if (s->closing) {
    if (!s->in_callback) start_close(s);
    return;
  }
  if (status < 0) {
    count_errno(s->recv_errno, -status);
    s->stats[ST_RECV_ERRORS]++;
    return;
  }
  if (s->pend_from < s->pend_count) {
    if (!(events & UV_WRITABLE) || !flush(s)) return;
    set_events(s, UV_READABLE);
  }
  read_batches(s);
  if (s->closing && !s->in_callback) start_close(s);
}

static void set_events(sock_t *s, int events) {
  if (s->events == events) return;
  s->events = events;
  uv_poll_start(&s->poll, events, on_poll);
}

/* ---- JavaScript API -------------------------------------------------------------------- */

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  const char *code = NULL;
  switch (err) {
    case EADDRINUSE: code = "EADDRINUSE"; break;
    case EACCES: code = "EACCES"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case EAFNOSUPPORT: code = "EAFNOSUPPORT"; break;
    case EINVAL: code = "EINVAL"; break;
    case EMFILE: code = "EMFILE"; break;
    default: code = "ESYSCALL"; break;
  }
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, code, msg);
  return NULL;
}

static int get_arraybuffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_ab = false;
  if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab) return 0;
  return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
}

static uint32_t get_u32(napi_env env, napi_value v) {
  uint32_t x = 0;
  napi_get_value_uint32(env, v, &x);
  return x;
}

/*
 * open(host, port, reusePort, recvBufferBytes, sendBufferBytes, recv, send, meta, batch, recvSlot, sendSlot, callback)
 * → handle. Throws with the errno's code (EADDRINUSE, EACCES, ...) or EHOST when host is not a literal address.
 */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 12) {
    napi_throw_type_error(env, "EARGS", "open: 12 arguments expected");
    return NULL;
  }
  char host[64];
  size_t host_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok) {
    napi_throw_type_error(env, "EARGS", "open: host must be a string");
    return NULL;
  }
  uint32_t port = get_u32(env, argv[1]);
  bool reuse = false;
  napi_get_value_bool(env, argv[2], &reuse);
  uint32_t rcvbuf = get_u32(env, argv[3]), sndbuf = get_u32(env, argv[4]);
  void *recv, *send, *meta;
  size_t recv_len, send_len, meta_len;
  if (!get_arraybuffer(env, argv[5], &recv, &recv_len) || !get_arraybuffer(env, argv[6], &send, &send_len) || !get_arraybuffer(env, argv[7], &meta, &meta_len)) {
    napi_throw_type_error(env, "EARGS", "open: recv, send and meta must be ArrayBuffers");
    return NULL;
  }
  uint32_t batch = get_u32(env, argv[8]), recv_slot = get_u32(env, argv[9]), send_slot = get_u32(env, argv[10]);
  napi_valuetype cbt;
  napi_typeof(env, argv[11], &cbt);
  if (batch == 0 || batch > MAX_BATCH || recv_slot == 0 || send_slot == 0 || port > 65535 || cbt != napi_function ||
      (size_t)batch * recv_slot > recv_len || (size_t)batch * send_slot > send_len || (size_t)batch * META_STRIDE * 4 > meta_len) {
    napi_throw_range_error(env, "EARGS", "open: batch, slot sizes or buffer lengths out of range");
    return NULL;
  }

  struct sockaddr_storage ss;
  socklen_t ss_len;
  memset(&ss, 0, sizeof ss);
  int family;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    family = AF_INET;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    ss_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    ss_len = sizeof *v6;
  } else {
    napi_throw_error(env, "EHOST", "open: host is not a literal IPv4 or IPv6 address");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1;
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt(SO_REUSEPORT)");
  }
  if (bind(fd, (struct sockaddr *)&ss, ss_len) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  /* The kernel may cap these (net.core.rmem_max); the defaults still work. */
  if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (sndbuf) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    close(fd);
    napi_throw_error(env, "ELOOP", "open: no event loop");
    return NULL;
  }
  sock_t *s = (sock_t *)calloc(1, sizeof(sock_t));
  if (!s) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "open: out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->recv = (uint8_t *)recv;
  s->send = (uint8_t *)send;
  s->meta = (uint32_t *)meta;
  s->batch = batch;
  s->recv_slot = recv_slot;
  s->send_slot = send_slot;
  if (uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    napi_throw_error(env, "EPOLL", "open: uv_poll_init failed");
    return NULL;
  }
  s->poll.data = s;
  napi_create_reference(env, argv[5], 1, &s->recv_ref);
  napi_create_reference(env, argv[6], 1, &s->send_ref);
  napi_create_reference(env, argv[7], 1, &s->meta_ref);
  napi_create_reference(env, argv[11], 1, &s->cb_ref);
  napi_value resource_name;
  napi_create_string_utf8(env, "rrdns:udp-batch", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &s->async_context);
  napi_add_async_cleanup_hook(env, on_cleanup, s, &s->cleanup);
  s->events = 0;
  set_events(s, UV_READABLE);
  napi_value handle;
  napi_create_external(env, s, NULL, NULL, &handle);
  return handle;
}

static sock_t *get_sock(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return NULL;
  void *p = NULL;
  if (napi_get_value_external(env, argv[0], &p) != napi_ok) return NULL;
  return (sock_t *)p;
}

/* port(handle) → the bound port (getsockname). */
static napi_value js_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  sock_t *s = get_sock(env, info, 1, argv);
  napi_value out;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int port = -1;
  if (s && s->fd >= 0 && getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0)
    port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port) : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  napi_create_int32(env, port, &out);
  return out;
}

/* close(handle): idempotent; during the callback the close happens once it returns. The handle must not be used after. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  sock_t *s = get_sock(env, info, 1, argv);
  if (s && !s->closing) {
    s->closing = 1;
    if (!s->in_callback) start_close(s);
  }
  return NULL;
}

/*
 * stats(handle, out: Float64Array(ST_COUNT + 2 * ERRNO_SLOTS)) fills received, sent, batches, send waits,
 * dropped, callback errors, receive errors, truncated, then send errors and receive errors by errno.
 */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  sock_t *s = get_sock(env, info, 2, argv);
  if (!s) return NULL;
  napi_typedarray_type t;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &t, &length, &data, NULL, NULL) != napi_ok || t != napi_float64_array || length < ST_COUNT + 2 * ERRNO_SLOTS) {
    napi_throw_type_error(env, "EARGS", "stats: a Float64Array of the stats length expected");
    return NULL;
  }
  double *d = (double *)data;
  memcpy(d, s->stats, sizeof s->stats);
  memcpy(d + ST_COUNT, s->send_errno, sizeof s->send_errno);
  memcpy(d + ST_COUNT + ERRNO_SLOTS, s->recv_errno, sizeof s->recv_errno);
  return NULL;
}

/*
 * injectSendErrors(handle, errno, count): the next `count` sendmmsg calls fail with `errno` as if the
 * kernel had refused them (EAGAIN: a full send buffer; ENOBUFS; EPERM from a firewall). For the tests of
 * the error paths above, which loopback cannot provoke on demand; nothing else calls it.
 */
static napi_value js_inject(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  sock_t *s = get_sock(env, info, 3, argv);
  if (!s) return NULL;
  s->inject_errno = (int)get_u32(env, argv[1]);
  s->inject_count = get_u32(env, argv[2]);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"port", NULL, js_port, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"injectSendErrors", NULL, js_inject, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value n;
  napi_create_uint32(env, META_STRIDE, &n);
  napi_set_named_property(env, exports, "metaStride", n);
  napi_create_uint32(env, MAX_BATCH, &n);
  napi_set_named_property(env, exports, "maxBatch", n);
  napi_create_uint32(env, ST_COUNT, &n);
  napi_set_named_property(env, exports, "statCount", n);
  napi_create_uint32(env, ERRNO_SLOTS, &n);
  napi_set_named_property(env, exports, "errnoSlots", n);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
