// The machine-URL relay's native data path, a Node addon (N-API) with a thread of its own.
//
// The relay in JavaScript (src/gateway/app-relay.ts) costs the server about 75 µs of CPU per
// request, three times what the app behind it spends, and a bare byte pipe in Node costs half
// of that already: Node's stream machinery, not the HTTP work, is most of it
// (docs/gateway.md). So once app-relay.ts has authorized and relayed a request on a
// connection, it hands both sockets here with a template of that request: the Host,
// Authorization and Cookie values it was authorized with, what of them goes on to the machine
// and the X-Forwarded-* fields, valid until the gateway's cached decision expires. This thread
// then relays the connection's next requests while they are the simplest kind — GET or HEAD
// without a body, the same Host and credentials byte for byte, nothing hop-by-hop — and the
// app's responses while they are framed by Content-Length or chunked. Authorization stays in
// JavaScript: nothing here decides who may reach a machine, it only recognises a request whose
// every input to that decision equals one the gateway already allowed.
//
// Everything else — another credential, a body, an upgrade, an expired decision, a response
// without a length, a broken upstream — hands the connection back to JavaScript with the bytes
// not yet relayed (and, mid-request, the request in flight), at a point where nothing is
// buffered for either side, and app-relay.ts carries on as if it had read those bytes itself.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DENIED 32
#define READ_SIZE 65536
/** A response head bigger than this is app-relay.ts's to judge (its limit is 64 KiB). */
#define MAX_RESPONSE_HEAD 16384
/** Pipelined bytes read ahead of the response are bounded; the client waits beyond this. */
#define MAX_CLIENT_PENDING 65536
#define CHUNK_LINE_MAX 4096
/** http1.ts MAX_HEAD_BYTES: a longer request head is app-relay.ts's to refuse. */
#define MAX_REQUEST_HEAD 16384

// --- buffers ------------------------------------------------------------------------------

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static int buf_add(buf_t *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
  return 0;
}

static int buf_str(buf_t *b, const char *s) { return buf_add(b, s, strlen(s)); }

static void buf_drop(buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static long head_end(const char *p, size_t n) {
  void *at = memmem(p, n, "\r\n\r\n", 4);
  return at ? (char *)at - p + 4 : -1;
}

// --- HTTP/1.1: the subset relayed here ----------------------------------------------------

/** What the relay is told once (app-gateway.ts owns these rules; see native-relay.ts). */
typedef struct {
  /** Request headers only app-relay.ts may handle (framing, hop-by-hop, SnapVM's own). */
  char *denied[MAX_DENIED];
  size_t n_denied;
  char *denied_prefix;
  /** Response headers that never reach the browser. */
  char *hop[MAX_DENIED];
  size_t n_hop;
  char *reserved;
  double keep_alive_ms, reuse_ms;
} config_t;

/** The request the gateway authorized on a connection, as the next ones must repeat it. */
typedef struct {
  char *machine;
  buf_t host, authorization, cookie;
  int has_authorization, has_cookie;
  /** What of their values goes on to the machine (absent: the header is dropped). */
  buf_t authorization_forward, cookie_forward;
  int forward_authorization, forward_cookie;
  /** X-Forwarded-For/-Proto/-Host and the blank line. */
  buf_t suffix;
  double until;
} template_t;

static int is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int ieq(const char *a, size_t n, const char *b) {
  return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

typedef struct {
  const char *name, *value;
  size_t name_len, value_len;
  /** The whole line with its CRLF. */
  const char *line;
  size_t line_len;
} field_t;

/**
 * The next field line of a head at *at (up to `end`, the blank line's index): 1 with `f`
 * filled, 0 at the blank line, -1 outside the subset (http1.ts's parseFields rules).
 */
static int next_field(const char *p, size_t *at, size_t end, field_t *f) {
  size_t i = *at;
  if (i == end) return 0;
  if (i > end) return -1;
  // p[end] starts the blank line's CRLF, so cr[1] is always there to read.
  const char *cr = memchr(p + i, '\r', end - i);
  if (!cr || cr[1] != '\n') return -1;
  size_t stop = cr - p;
  f->line = p + i;
  f->line_len = stop + 2 - i;
  size_t colon = i;
  while (colon < stop && p[colon] != ':') colon++;
  if (colon == i || colon == stop) return -1;
  for (size_t k = i; k < colon; k++)
    if (!is_tchar((unsigned char)p[k])) return -1;
  size_t vs = colon + 1, ve = stop;
  for (size_t k = vs; k < ve; k++)
    if (!is_value_byte((unsigned char)p[k])) return -1;
  while (vs < ve && (p[vs] == ' ' || p[vs] == '\t')) vs++;
  while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) ve--;
  f->name = p + i;
  f->name_len = colon - i;
  f->value = p + vs;
  f->value_len = ve - vs;
  *at = stop + 2;
  return 1;
}

static int denied_name(const config_t *cfg, const field_t *f) {
  size_t prefix = strlen(cfg->denied_prefix);
  if (prefix && f->name_len >= prefix && strncasecmp(f->name, cfg->denied_prefix, prefix) == 0)
    return 1;
  for (size_t k = 0; k < cfg->n_denied; k++)
    if (ieq(f->name, f->name_len, cfg->denied[k])) return 1;
  return 0;
}

static int is_hop(const config_t *cfg, const field_t *f) {
  for (size_t k = 0; k < cfg->n_hop; k++)
    if (ieq(f->name, f->name_len, cfg->hop[k])) return 1;
  return 0;
}

static int add_field(buf_t *out, const field_t *f, const char *value, size_t value_len) {
  return buf_add(out, f->name, f->name_len) || buf_add(out, ": ", 2) ||
         buf_add(out, value, value_len) || buf_add(out, "\r\n", 2);
}

static int same(const field_t *f, const buf_t *b) {
  return f->value_len == b->len && memcmp(f->value, b->p, b->len) == 0;
}

/**
 * The machine's head for a client request head `p` (n bytes, through its blank line) when it
 * is in the subset and repeats the template: appended to `out`, 1 returned and the method
 * copied. 0 when app-relay.ts must take the request.
 */
static int request_head(const config_t *cfg, const template_t *t, const char *p, size_t n,
                        buf_t *out, char method[8]) {
  size_t m;
  if (n >= 4 && memcmp(p, "GET ", 4) == 0)
    m = 3;
  else if (n >= 5 && memcmp(p, "HEAD ", 5) == 0)
    m = 4;
  else
    return 0;
  const char *line_end = memmem(p, n, "\r\n", 2);
  if (!line_end) return 0;
  size_t target = m + 1, stop = line_end - p;
  if (stop < target + 9 || memcmp(line_end - 9, " HTTP/1.1", 9) != 0) return 0;
  size_t target_end = stop - 9;
  if (target_end <= target || p[target] != '/') return 0;
  for (size_t k = target; k < target_end; k++)
    if ((unsigned char)p[k] < 0x21 || (unsigned char)p[k] > 0x7e) return 0;
  size_t reserved = strlen(cfg->reserved);
  if (target_end - target >= reserved && memcmp(p + target, cfg->reserved, reserved) == 0)
    return 0;
  size_t start = out->len;
  if (buf_add(out, p, stop + 2)) return 0;
  int hosts = 0, authorizations = 0, cookies = 0;
  size_t at = stop + 2, end = n - 2;
  field_t f;
  int r;
  while ((r = next_field(p, &at, end, &f)) == 1) {
    int ok = 1;
    if (ieq(f.name, f.name_len, "host")) {
      ok = ++hosts == 1 && same(&f, &t->host) && !add_field(out, &f, f.value, f.value_len);
    } else if (ieq(f.name, f.name_len, "authorization")) {
      ok = ++authorizations == 1 && t->has_authorization && same(&f, &t->authorization) &&
           !(t->forward_authorization && add_field(out, &f, t->authorization_forward.p,
                                                   t->authorization_forward.len));
    } else if (ieq(f.name, f.name_len, "cookie")) {
      ok = ++cookies == 1 && t->has_cookie && same(&f, &t->cookie) &&
           !(t->forward_cookie && add_field(out, &f, t->cookie_forward.p, t->cookie_forward.len));
    } else if (ieq(f.name, f.name_len, "connection")) {
      // Hop-by-hop and dropped; any option but keep-alive would name more headers to drop.
      ok = ieq(f.value, f.value_len, "keep-alive");
    } else if (denied_name(cfg, &f)) {
      ok = 0;
    } else {
      ok = !add_field(out, &f, f.value, f.value_len);
    }
    if (!ok) break;
  }
  if (r != 0 || hosts != 1 || authorizations != t->has_authorization ||
      cookies != t->has_cookie || buf_add(out, t->suffix.p, t->suffix.len)) {
    out->len = start;
    return 0;
  }
  memcpy(method, p, m);
  method[m] = 0;
  return 1;
}

enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

typedef struct {
  int framing;
  uint64_t length;
  /** The app said it closes the connection after this response. */
  int close;
} response_t;

/**
 * The client's head for a response head `p` (n bytes, through its blank line) to a request of
 * `method`, when it is in the subset: appended to `out` with "Connection: close" when
 * `closing`, 1 returned. 0 when app-relay.ts must read it (1xx, HTTP/1.0, no length, …).
 */
static int response_head(const config_t *cfg, const char *p, size_t n, const char *method,
                         int closing, buf_t *out, response_t *res) {
  const char *line_end = memmem(p, n, "\r\n", 2);
  if (!line_end || n < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0) return 0;
  size_t stop = line_end - p;
  int status = 0;
  for (int k = 9; k < 12; k++) {
    if (p[k] < '0' || p[k] > '9') return 0;
    status = status * 10 + (p[k] - '0');
  }
  if (status < 200 || status > 599) return 0;
  const char *reason = "";
  size_t reason_len = 0;
  if (stop > 12) {
    if (p[12] != ' ') return 0;
    reason = p + 13;
    reason_len = stop - 13;
    for (size_t k = 13; k < stop; k++)
      if (!is_value_byte((unsigned char)p[k])) return 0;
  }
  size_t start = out->len;
  int ok = !buf_add(out, p, 12) && !buf_add(out, " ", 1) && !buf_add(out, reason, reason_len) &&
           !buf_add(out, "\r\n", 2);
  int lengths = 0, encodings = 0;
  uint64_t length = 0;
  res->close = 0;
  size_t at = stop + 2, end = n - 2;
  field_t f;
  int r = -1;
  while (ok && (r = next_field(p, &at, end, &f)) == 1) {
    if (ieq(f.name, f.name_len, "content-length")) {
      if (++lengths > 1 || f.value_len == 0 || f.value_len > 15) ok = 0;
      for (size_t k = 0; ok && k < f.value_len; k++) {
        if (f.value[k] < '0' || f.value[k] > '9') ok = 0;
        length = length * 10 + (uint64_t)(f.value[k] - '0');
      }
      // llhttp refuses a tab after the number (http1.ts TRAILING_TAB).
      if (ok && memchr(f.value + f.value_len, '\t', f.line + f.line_len - 2 - (f.value + f.value_len)))
        ok = 0;
    } else if (ieq(f.name, f.name_len, "transfer-encoding")) {
      ok = ++encodings == 1 && ieq(f.value, f.value_len, "chunked") &&
           !memchr(f.value + f.value_len, '\t', f.line + f.line_len - 2 - (f.value + f.value_len));
    } else if (ieq(f.name, f.name_len, "connection")) {
      // Options other than close and keep-alive name headers to drop: app-relay.ts does that.
      if (ieq(f.value, f.value_len, "close"))
        res->close = 1;
      else if (!ieq(f.value, f.value_len, "keep-alive"))
        ok = 0;
      continue;
    } else if (ieq(f.name, f.name_len, "close")) {
      ok = 0;  // a Connection: close would make it hop-by-hop; too odd to be worth the rule
    } else if (is_hop(cfg, &f)) {
      continue;  // hop-by-hop: not for the browser
    } else if (ieq(f.name, f.name_len, "set-cookie") && f.value_len >= 7 &&
               strncasecmp(f.value, "snapvm_", 7) == 0) {
      continue;  // an app cannot set (or clear) SnapVM's cookies on its host
    }
    if (ok) ok = !add_field(out, &f, f.value, f.value_len);
  }
  // RFC 9112 §6.3: these never have a body, whatever the fields say. Any other response needs
  // a length or chunks here; one that runs until the app closes is app-relay.ts's.
  int bodiless = strcmp(method, "HEAD") == 0 || status == 204 || status == 304;
  if (r != 0 || lengths + encodings > 1 || (!bodiless && lengths + encodings == 0)) ok = 0;
  res->framing = bodiless ? BODY_NONE : encodings ? BODY_CHUNKED : length > 0 ? BODY_LENGTH : BODY_NONE;
  res->length = length;
  if (ok && closing) ok = !buf_str(out, "Connection: close\r\n");
  if (!ok || buf_add(out, "\r\n", 2)) {
    out->len = start;
    return 0;
  }
  return 1;
}

/** The end of a chunked body as it streams past (http1.ts ChunkedScanner, same rules). */
typedef struct {
  enum { C_SIZE, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_DONE } state;
  uint64_t left;
  char line[CHUNK_LINE_MAX + 2];
  size_t line_len;
} chunked_t;

static int chunk_size_line(const char *s, size_t n, uint64_t *size) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < n && i < 9 && strchr("0123456789abcdefABCDEF", s[i]) && s[i]) {
    char c = s[i];
    v = v * 16 + (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    i++;
  }
  if (i == 0 || i > 8) return 0;
  // Extensions: ;token or ;token=token or ;token="quoted", without whitespace.
  while (i < n) {
    if (s[i++] != ';') return 0;
    size_t t = i;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == t) return 0;
    if (i < n && s[i] == '=') {
      i++;
      if (i < n && s[i] == '"') {
        i++;
        for (;;) {
          if (i >= n) return 0;
          unsigned char c = (unsigned char)s[i];
          if (c == '"') {
            i++;
            break;
          }
          if (c == '\\') {
            if (i + 1 >= n || !is_value_byte((unsigned char)s[i + 1])) return 0;
            i += 2;
          } else if (is_value_byte(c)) {
            i++;
          } else {
            return 0;
          }
        }
      } else {
        size_t v0 = i;
        while (i < n && is_tchar((unsigned char)s[i])) i++;
        if (i == v0) return 0;
      }
    }
  }
  *size = v;
  return 1;
}

/** Bytes of `data` that belong to the body, or -1 when its framing is malformed. */
static long chunked_push(chunked_t *c, const char *data, size_t n) {
  size_t i = 0;
  while (i < n && c->state != C_DONE) {
    switch (c->state) {
      case C_DATA: {
        size_t take = c->left < n - i ? (size_t)c->left : n - i;
        c->left -= take;
        i += take;
        if (c->left == 0) c->state = C_DATA_CR;
        break;
      }
      case C_DATA_CR:
        if (data[i++] != '\r') return -1;
        c->state = C_DATA_LF;
        break;
      case C_DATA_LF:
        if (data[i++] != '\n') return -1;
        c->state = C_SIZE;
        break;
      default: {
        const char *lf = memchr(data + i, '\n', n - i);
        size_t stop = lf ? (size_t)(lf - data) + 1 : n;
        if (c->line_len + (stop - i) > CHUNK_LINE_MAX) return -1;
        memcpy(c->line + c->line_len, data + i, stop - i);
        c->line_len += stop - i;
        i = stop;
        if (!lf) break;
        if (c->line_len < 2 || c->line[c->line_len - 2] != '\r') return -1;
        size_t len = c->line_len - 2;
        c->line_len = 0;
        if (c->state == C_TRAILER) {
          if (len == 0) {
            c->state = C_DONE;
            break;
          }
          size_t colon = 0;
          while (colon < len && is_tchar((unsigned char)c->line[colon])) colon++;
          if (colon == 0 || colon == len || c->line[colon] != ':') return -1;
          for (size_t k = colon + 1; k < len; k++)
            if (!is_value_byte((unsigned char)c->line[k])) return -1;
          if (ieq(c->line, colon, "content-length") || ieq(c->line, colon, "transfer-encoding"))
            return -1;
          break;
        }
        uint64_t size;
        if (!chunk_size_line(c->line, len, &size)) return -1;
        c->left = size;
        c->state = size == 0 ? C_TRAILER : C_DATA;
      }
    }
  }
  return (long)i;
}

// --- connections --------------------------------------------------------------------------

struct relay;

typedef struct conn {
  struct relay *relay;
  struct conn *next;
  uint32_t id;
  int cfd, ufd;
  uint32_t client_events, upstream_events;
  /** Ended while events for it may still be in the batch: freed after the batch. */
  int dead;
  template_t t;
  /** Client bytes not yet relayed; the machine's response head while it is incomplete. */
  buf_t client_in, upstream_in;
  /** Bytes the kernel did not take yet: their reader waits until they are gone. */
  buf_t client_out, upstream_out;
  /** The request in flight: its method and its head as sent (app-relay.ts resends it once). */
  int in_flight;
  char method[8];
  buf_t sent;
  int responded;
  int body;
  uint64_t left;
  chunked_t chunked;
  int upstream_closes;
  int client_ended, closing, expired;
  double upstream_used_at, idle_since;
} conn_t;

typedef struct event {
  enum { EV_HAND_BACK = 1, EV_CLOSED = 2 } kind;
  uint32_t id;
  int cfd, ufd;
  buf_t client_bytes, upstream_bytes, sent;
  int in_flight;
  char method[8];
  double used_at;
} event_t;

typedef struct relay {
  config_t cfg;
  pthread_t thread;
  int epfd, evfd;
  napi_threadsafe_function tsfn;
  pthread_mutex_t lock;
  /** Queued by the JavaScript thread, taken by the relay's. */
  conn_t *incoming;
  char **expire_ids;
  size_t n_expire;
  int expire_all, close_idle, close_all, stop;
  /** js_stop released the threadsafe function (the JavaScript thread's own flag). */
  int released;
  /** Machines with requests since JavaScript last asked: activity for their idle timers. */
  char **active;
  size_t n_active, cap_active;
  /** The relay thread's own. */
  conn_t *conns, *graveyard;
  int closed_idle;
  uint64_t relayed;
} relay_t;

/** epoll's tag for a socket: the connection, with the low bit set for its upstream side. */
static uint64_t tag(conn_t *c, int upstream) { return (uint64_t)(uintptr_t)c | (uint64_t)upstream; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void template_free(template_t *t) {
  free(t->machine);
  buf_free(&t->host);
  buf_free(&t->authorization);
  buf_free(&t->cookie);
  buf_free(&t->authorization_forward);
  buf_free(&t->cookie_forward);
  buf_free(&t->suffix);
}

static void conn_free(conn_t *c) {
  template_free(&c->t);
  buf_free(&c->client_in);
  buf_free(&c->upstream_in);
  buf_free(&c->client_out);
  buf_free(&c->upstream_out);
  buf_free(&c->sent);
  free(c);
}

static void event_free(event_t *e) {
  buf_free(&e->client_bytes);
  buf_free(&e->upstream_bytes);
  buf_free(&e->sent);
  free(e);
}

/** Takes `c` off the live list; it is freed once the current batch of events is done. */
static void bury(conn_t *c) {
  relay_t *r = c->relay;
  for (conn_t **at = &r->conns; *at; at = &(*at)->next)
    if (*at == c) {
      *at = c->next;
      break;
    }
  c->dead = 1;
  c->next = r->graveyard;
  r->graveyard = c;
}

static void emit(relay_t *r, event_t *e) {
  if (napi_call_threadsafe_function(r->tsfn, e, napi_tsfn_nonblocking) != napi_ok) {
    if (e->cfd >= 0) close(e->cfd);
    if (e->ufd >= 0) close(e->ufd);
    event_free(e);
  }
}

/** Ends a connection here: both sockets closed, JavaScript told (it holds the machine busy). */
static void conn_close(conn_t *c) {
  if (c->dead) return;
  close(c->cfd);
  if (c->ufd >= 0) close(c->ufd);
  event_t *e = calloc(1, sizeof *e);
  if (e) {
    e->kind = EV_CLOSED;
    e->id = c->id;
    e->cfd = e->ufd = -1;
    emit(c->relay, e);
  }
  bury(c);
}

/** Gives the connection back to app-relay.ts: nothing is owed to either side by now. */
static void hand_back(conn_t *c) {
  relay_t *r = c->relay;
  if (c->dead) return;
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
  if (c->ufd >= 0) epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
  event_t *e = calloc(1, sizeof *e);
  if (!e) {
    conn_close(c);
    return;
  }
  e->kind = EV_HAND_BACK;
  e->id = c->id;
  e->cfd = c->cfd;
  e->ufd = c->ufd;
  e->client_bytes = c->client_in;
  e->upstream_bytes = c->upstream_in;
  e->in_flight = c->in_flight;
  memcpy(e->method, c->method, sizeof e->method);
  e->sent = c->sent;
  e->used_at = c->upstream_used_at;
  memset(&c->client_in, 0, sizeof c->client_in);
  memset(&c->upstream_in, 0, sizeof c->upstream_in);
  memset(&c->sent, 0, sizeof c->sent);
  emit(r, e);
  bury(c);
}

static void drop_upstream(conn_t *c) {
  if (c->ufd < 0) return;
  epoll_ctl(c->relay->epfd, EPOLL_CTL_DEL, c->ufd, NULL);
  close(c->ufd);
  c->ufd = -1;
  c->upstream_events = 0;
  c->upstream_out.len = 0;
}

/** Writes what `out` holds to `fd`; -1 when the socket is broken. */
static int flush(int fd, buf_t *out) {
  while (out->len > 0) {
    ssize_t w = send(fd, out->p, out->len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    buf_drop(out, (size_t)w);
  }
  return 0;
}

static void set_events(conn_t *c, int upstream, uint32_t want) {
  int fd = upstream ? c->ufd : c->cfd;
  uint32_t *have = upstream ? &c->upstream_events : &c->client_events;
  if (fd < 0 || *have == want) return;
  struct epoll_event ev = {.events = want, .data.u64 = tag(c, upstream)};
  epoll_ctl(c->relay->epfd, EPOLL_CTL_MOD, fd, &ev);
  *have = want;
}

/** Reads from each side only while what it sends has somewhere to go. */
static void update_events(conn_t *c) {
  if (c->dead) return;
  uint32_t client = 0, upstream = 0;
  if (c->upstream_out.len == 0 && !c->client_ended && c->client_in.len < MAX_CLIENT_PENDING)
    client |= EPOLLIN;
  if (c->client_out.len > 0) client |= EPOLLOUT;
  if (c->client_out.len == 0) upstream |= EPOLLIN;
  if (c->upstream_out.len > 0) upstream |= EPOLLOUT;
  set_events(c, 0, client);
  set_events(c, 1, upstream);
}

/** Marks the connection's machine busy (under the lock; the list holds a few machines). */
static void mark_active(conn_t *c) {
  relay_t *r = c->relay;
  pthread_mutex_lock(&r->lock);
  size_t k = 0;
  while (k < r->n_active && strcmp(r->active[k], c->t.machine) != 0) k++;
  if (k == r->n_active) {
    char *id = strdup(c->t.machine);
    if (id && r->n_active == r->cap_active) {
      size_t cap = r->cap_active ? r->cap_active * 2 : 8;
      char **list = realloc(r->active, cap * sizeof *list);
      if (list) {
        r->active = list;
        r->cap_active = cap;
      }
    }
    if (id && r->n_active < r->cap_active)
      r->active[r->n_active++] = id;
    else
      free(id);
  }
  pthread_mutex_unlock(&r->lock);
}

/**
 * At a request boundary: the next request relayed, handed back, or waited for; the
 * connection ended when it is closing.
 */
static void next_request(conn_t *c) {
  relay_t *r = c->relay;
  // Nothing moves on while bytes are owed to the client: a hand-back starts clean.
  if (c->client_out.len > 0) return;
  if (c->closing) {
    shutdown(c->cfd, SHUT_WR);
    conn_close(c);
    return;
  }
  if (c->client_in.len == 0) return;
  long end = head_end(c->client_in.p, c->client_in.len);
  if (end < 0) {
    if (c->client_in.len > MAX_REQUEST_HEAD) hand_back(c);
    return;
  }
  double now = now_ms();
  if (c->ufd < 0 || c->expired || now >= c->t.until ||
      now - c->upstream_used_at >= r->cfg.reuse_ms) {
    hand_back(c);
    return;
  }
  c->sent.len = 0;
  if (!request_head(&r->cfg, &c->t, c->client_in.p, (size_t)end, &c->sent, c->method)) {
    hand_back(c);
    return;
  }
  buf_drop(&c->client_in, (size_t)end);
  mark_active(c);
  c->in_flight = 1;
  c->responded = 0;
  c->upstream_in.len = 0;
  if (buf_add(&c->upstream_out, c->sent.p, c->sent.len)) {
    conn_close(c);
    return;
  }
  if (flush(c->ufd, &c->upstream_out) < 0) {
    // The app closed the kept-alive connection as the request went: app-relay.ts resends it.
    drop_upstream(c);
    hand_back(c);
  }
}

static void finish_response(conn_t *c) {
  c->in_flight = 0;
  c->sent.len = 0;
  __atomic_add_fetch(&c->relay->relayed, 1, __ATOMIC_RELAXED);
  c->upstream_used_at = c->idle_since = now_ms();
  if (c->upstream_closes) drop_upstream(c);
  next_request(c);
}

/** Relays response body bytes from `data`; `used` says how many belonged to the body. */
static int relay_body(conn_t *c, const char *data, size_t n, size_t *used) {
  size_t take;
  if (c->body == BODY_LENGTH) {
    take = c->left < n ? (size_t)c->left : n;
    c->left -= take;
    if (c->left == 0) c->body = BODY_NONE;
  } else {
    long took = chunked_push(&c->chunked, data, n);
    if (took < 0) return -1;
    take = (size_t)took;
    if (c->chunked.state == C_DONE) c->body = BODY_NONE;
  }
  *used = take;
  return buf_add(&c->client_out, data, take);
}

/** Relays `data` from `off` while the body lasts; bytes after it end the upstream's reuse. */
static int relay_rest(conn_t *c, const char *data, size_t n, size_t off) {
  size_t used;
  while (off < n && c->body != BODY_NONE) {
    if (relay_body(c, data + off, n - off, &used)) return -1;
    off += used;
  }
  if (off < n) c->upstream_closes = 1;
  return 0;
}

/** The machine's bytes for the request in flight. */
static void on_upstream_bytes(conn_t *c, const char *data, size_t n) {
  relay_t *r = c->relay;
  if (!c->in_flight) {
    // Bytes that answer no request: app-relay.ts would drop this upstream connection and
    // connect afresh for the next request.
    drop_upstream(c);
    return;
  }
  if (!c->responded) {
    if (buf_add(&c->upstream_in, data, n)) return conn_close(c);
    long end = head_end(c->upstream_in.p, c->upstream_in.len);
    if (end < 0) {
      if (c->upstream_in.len > MAX_RESPONSE_HEAD) hand_back(c);
      return;
    }
    response_t res;
    if (!response_head(&r->cfg, c->upstream_in.p, (size_t)end, c->method, c->closing,
                       &c->client_out, &res))
      return hand_back(c);
    c->responded = 1;
    c->upstream_closes = res.close;
    c->body = res.framing;
    c->left = res.length;
    memset(&c->chunked, 0, sizeof c->chunked);
    buf_t rest = c->upstream_in;
    memset(&c->upstream_in, 0, sizeof c->upstream_in);
    int failed = relay_rest(c, rest.p, rest.len, (size_t)end);
    buf_free(&rest);
    if (failed) return conn_close(c);
  } else if (relay_rest(c, data, n, 0)) {
    return conn_close(c);
  }
  if (flush(c->cfd, &c->client_out) < 0) return conn_close(c);
  if (c->body == BODY_NONE) finish_response(c);
}

static void on_client(conn_t *c, uint32_t events) {
  if (events & EPOLLOUT) {
    if (flush(c->cfd, &c->client_out) < 0) return conn_close(c);
    if (c->client_out.len == 0 && !c->in_flight) next_request(c);
    if (c->dead) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char data[READ_SIZE];
    ssize_t n = recv(c->cfd, data, sizeof data, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      // nothing yet
    } else if (n < 0 || (n == 0 && (events & EPOLLHUP))) {
      // Reset, or gone both ways: no answer can reach it.
      return conn_close(c);
    } else if (n == 0) {
      // The client is done sending: the request in flight is still answered, then it ends.
      c->client_ended = c->closing = 1;
      if (!c->in_flight) next_request(c);
    } else {
      if (buf_add(&c->client_in, data, (size_t)n)) return conn_close(c);
      if (!c->in_flight) next_request(c);
    }
  }
  update_events(c);
}

static void on_upstream(conn_t *c, uint32_t events) {
  if ((events & EPOLLOUT) && flush(c->ufd, &c->upstream_out) < 0) {
    drop_upstream(c);
    return c->in_flight && !c->responded ? hand_back(c) : conn_close(c);
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char data[READ_SIZE];
    ssize_t n = recv(c->ufd, data, sizeof data, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      // nothing yet
    } else if (n <= 0) {
      drop_upstream(c);
      // Before any answer app-relay.ts resends the request once; mid-body the response is
      // cut short, and so is the client's connection.
      if (c->in_flight && !c->responded) return hand_back(c);
      if (c->in_flight) return conn_close(c);
    } else {
      on_upstream_bytes(c, data, (size_t)n);
    }
  }
  update_events(c);
}

static void take_commands(relay_t *r) {
  pthread_mutex_lock(&r->lock);
  conn_t *incoming = r->incoming;
  r->incoming = NULL;
  char **ids = r->expire_ids;
  size_t n_ids = r->n_expire;
  r->expire_ids = NULL;
  r->n_expire = 0;
  int expire_all = r->expire_all, close_idle = r->close_idle, close_all = r->close_all;
  r->expire_all = r->close_idle = r->close_all = 0;
  pthread_mutex_unlock(&r->lock);
  while (incoming) {
    conn_t *c = incoming;
    incoming = c->next;
    c->next = r->conns;
    r->conns = c;
    struct epoll_event ce = {.events = EPOLLIN, .data.u64 = tag(c, 0)};
    struct epoll_event ue = {.events = EPOLLIN, .data.u64 = tag(c, 1)};
    c->client_events = c->upstream_events = EPOLLIN;
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->cfd, &ce) < 0 ||
        epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->ufd, &ue) < 0) {
      conn_close(c);
      continue;
    }
    if (r->closed_idle) c->closing = 1;
  }
  for (conn_t *c = r->conns; c; c = c->next) {
    if (expire_all) c->expired = 1;
    for (size_t k = 0; k < n_ids; k++)
      if (strcmp(c->t.machine, ids[k]) == 0) c->expired = 1;
  }
  for (size_t k = 0; k < n_ids; k++) free(ids[k]);
  free(ids);
  if (close_idle) r->closed_idle = 1;
  if (close_idle || close_all) {
    conn_t *c = r->conns;
    while (c) {
      conn_t *next = c->next;
      c->closing = 1;
      if (close_all || (!c->in_flight && c->client_in.len == 0 && c->client_out.len == 0))
        conn_close(c);
      c = next;
    }
  }
}

/** Connections quiet between requests for the keep-alive time end, as Node's server does. */
static void sweep(relay_t *r) {
  double now = now_ms();
  conn_t *c = r->conns;
  while (c) {
    conn_t *next = c->next;
    if (!c->in_flight && c->client_in.len == 0 && c->client_out.len == 0 &&
        now - c->idle_since >= r->cfg.keep_alive_ms)
      conn_close(c);
    else if (c->in_flight)
      mark_active(c);  // a long response keeps its machine busy
    c = next;
  }
}

static void free_graveyard(relay_t *r) {
  while (r->graveyard) {
    conn_t *c = r->graveyard;
    r->graveyard = c->next;
    conn_free(c);
  }
}

static void *relay_main(void *arg) {
  relay_t *r = arg;
  struct epoll_event events[64];
  double swept = now_ms();
  for (;;) {
    int n = epoll_wait(r->epfd, events, 64, 250);
    pthread_mutex_lock(&r->lock);
    int stop = r->stop;
    pthread_mutex_unlock(&r->lock);
    if (stop) break;
    // Commands first: an expiry JavaScript made before the client sent these bytes (a
    // settings change, then the request that must see it) applies to them.
    take_commands(r);
    for (int i = 0; i < n; i++) {
      uint64_t t = events[i].data.u64;
      if (t == 0) {
        uint64_t v;
        if (read(r->evfd, &v, sizeof v) < 0) { /* drained by an earlier wake-up */ }
        continue;
      }
      conn_t *c = (conn_t *)(uintptr_t)(t & ~(uint64_t)1);
      if (c->dead) continue;
      if (t & 1)
        on_upstream(c, events[i].events);
      else
        on_client(c, events[i].events);
    }
    free_graveyard(r);
    double now = now_ms();
    if (now - swept >= 250) {
      swept = now;
      sweep(r);
    }
    free_graveyard(r);
  }
  while (r->conns) conn_close(r->conns);
  free_graveyard(r);
  return NULL;
}

// --- JavaScript -----------------------------------------------------------------------------

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "app-relay: " #call " failed");     \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static void call_js(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  event_t *e = data;
  if (!env) {
    if (e->cfd >= 0) close(e->cfd);
    if (e->ufd >= 0) close(e->ufd);
  } else {
    napi_value args[9], undefined, nul;
    napi_get_undefined(env, &undefined);
    napi_get_null(env, &nul);
    napi_create_int32(env, e->kind, &args[0]);
    napi_create_uint32(env, e->id, &args[1]);
    napi_create_int32(env, e->cfd, &args[2]);
    napi_create_int32(env, e->ufd, &args[3]);
    void *copy;
    args[4] = args[5] = args[6] = args[7] = nul;
    if (e->client_bytes.len)
      napi_create_buffer_copy(env, e->client_bytes.len, e->client_bytes.p, &copy, &args[4]);
    if (e->upstream_bytes.len)
      napi_create_buffer_copy(env, e->upstream_bytes.len, e->upstream_bytes.p, &copy, &args[5]);
    if (e->in_flight) {
      napi_create_string_latin1(env, e->method, NAPI_AUTO_LENGTH, &args[6]);
      napi_create_buffer_copy(env, e->sent.len, e->sent.p, &copy, &args[7]);
    }
    napi_create_double(env, e->used_at, &args[8]);
    napi_call_function(env, undefined, callback, 9, args, NULL);
  }
  buf_free(&e->client_bytes);
  buf_free(&e->upstream_bytes);
  buf_free(&e->sent);
  free(e);
}

static int get_buffer(napi_env env, napi_value obj, const char *name, buf_t *out, int *present) {
  napi_value v;
  napi_valuetype type;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &type) != napi_ok)
    return -1;
  if (type == napi_null || type == napi_undefined) {
    if (present) *present = 0;
    return present ? 0 : -1;
  }
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return -1;
  if (present) *present = 1;
  out->len = 0;
  return buf_add(out, data, len);
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s && napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return NULL;
  }
  return s;
}

static char *get_string_property(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return NULL;
  return get_string(env, v);
}

static double get_number_property(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  double d = 0;
  if (napi_get_named_property(env, obj, name, &v) == napi_ok) napi_get_value_double(env, v, &d);
  return d;
}

static int read_template(napi_env env, napi_value obj, template_t *t) {
  memset(t, 0, sizeof *t);
  t->machine = get_string_property(env, obj, "machine");
  t->until = get_number_property(env, obj, "until");
  if (!t->machine || get_buffer(env, obj, "host", &t->host, NULL) ||
      get_buffer(env, obj, "authorization", &t->authorization, &t->has_authorization) ||
      get_buffer(env, obj, "cookie", &t->cookie, &t->has_cookie) ||
      get_buffer(env, obj, "authorizationForward", &t->authorization_forward,
                 &t->forward_authorization) ||
      get_buffer(env, obj, "cookieForward", &t->cookie_forward, &t->forward_cookie) ||
      get_buffer(env, obj, "suffix", &t->suffix, NULL)) {
    template_free(t);
    return -1;
  }
  return 0;
}

static void config_free(config_t *cfg) {
  for (size_t k = 0; k < cfg->n_denied; k++) free(cfg->denied[k]);
  for (size_t k = 0; k < cfg->n_hop; k++) free(cfg->hop[k]);
  free(cfg->denied_prefix);
  free(cfg->reserved);
}

static int read_names(napi_env env, napi_value obj, const char *name, char **names, size_t *count) {
  napi_value list;
  uint32_t n = 0;
  if (napi_get_named_property(env, obj, name, &list) != napi_ok ||
      napi_get_array_length(env, list, &n) != napi_ok || n > MAX_DENIED)
    return -1;
  for (uint32_t k = 0; k < n; k++) {
    napi_value v;
    if (napi_get_element(env, list, k, &v) != napi_ok) return -1;
    if (!(names[k] = get_string(env, v))) return -1;
    *count = k + 1;
  }
  return 0;
}

static int read_config(napi_env env, napi_value obj, config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  if (read_names(env, obj, "deniedHeaders", cfg->denied, &cfg->n_denied) ||
      read_names(env, obj, "hopByHop", cfg->hop, &cfg->n_hop))
    return -1;
  cfg->denied_prefix = get_string_property(env, obj, "deniedPrefix");
  cfg->reserved = get_string_property(env, obj, "reservedPrefix");
  cfg->keep_alive_ms = get_number_property(env, obj, "keepAliveMs");
  cfg->reuse_ms = get_number_property(env, obj, "upstreamReuseMs");
  return cfg->denied_prefix && cfg->reserved ? 0 : -1;
}

static relay_t *relay_of(napi_env env, napi_value v) {
  void *p = NULL;
  napi_get_value_external(env, v, &p);
  return p;
}

static void relay_stop(relay_t *r) {
  pthread_mutex_lock(&r->lock);
  int running = !r->stop;
  r->stop = 1;
  pthread_mutex_unlock(&r->lock);
  if (!running) return;
  uint64_t one = 1;
  if (write(r->evfd, &one, sizeof one) < 0) { /* the thread sees `stop` within 250 ms */ }
  pthread_join(r->thread, NULL);
}

/** The environment is going (the process exits, or a worker ends): the thread ends first. */
static void relay_cleanup(void *data) { relay_stop(data); }

static void relay_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  relay_t *r = data;
  relay_stop(r);
  napi_remove_env_cleanup_hook(env, relay_cleanup, r);
  while (r->incoming) {
    conn_t *c = r->incoming;
    r->incoming = c->next;
    close(c->cfd);
    close(c->ufd);
    conn_free(c);
  }
  // The threadsafe function is not released here: js_stop did, or the environment's own
  // teardown frees it.
  close(r->epfd);
  close(r->evfd);
  config_free(&r->cfg);
  for (size_t k = 0; k < r->n_active; k++) free(r->active[k]);
  free(r->active);
  pthread_mutex_destroy(&r->lock);
  free(r);
}

/** create(config, onEvent): a relay with its thread; onEvent(kind, id, …) per hand-back or end. */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, external;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = calloc(1, sizeof *r);
  if (!r || read_config(env, argv[0], &r->cfg)) {
    if (r) config_free(&r->cfg);
    free(r);
    napi_throw_type_error(env, NULL, "app-relay: bad config");
    return NULL;
  }
  pthread_mutex_init(&r->lock, NULL);
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  CHECK(napi_create_string_utf8(env, "snapvm-app-relay", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js,
                                        &r->tsfn));
  // The relay must not keep the process alive; the server's own handles do that.
  CHECK(napi_unref_threadsafe_function(env, r->tsfn));
  if (r->epfd < 0 || r->evfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) < 0 ||
      pthread_create(&r->thread, NULL, relay_main, r) != 0) {
    napi_throw_error(env, NULL, "app-relay: cannot start its thread");
    return NULL;
  }
  // Registered after the threadsafe function, so it runs before that is torn down (cleanup
  // hooks run in reverse): the thread must not call into a freed function.
  CHECK(napi_add_env_cleanup_hook(env, relay_cleanup, r));
  CHECK(napi_create_external(env, r, relay_finalize, NULL, &external));
  return external;
}

static void wake(relay_t *r) {
  uint64_t one = 1;
  if (write(r->evfd, &one, sizeof one) < 0) { /* already signalled */ }
}

/**
 * adopt(relay, id, clientFd, upstreamFd, template, upstreamUsedAt): the relay takes copies of
 * both sockets (the caller closes its own) at a request boundary. False when it cannot.
 */
static napi_value js_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = relay_of(env, argv[0]);
  uint32_t id;
  int32_t cfd, ufd;
  double used_at;
  CHECK(napi_get_value_uint32(env, argv[1], &id));
  CHECK(napi_get_value_int32(env, argv[2], &cfd));
  CHECK(napi_get_value_int32(env, argv[3], &ufd));
  CHECK(napi_get_value_double(env, argv[5], &used_at));
  conn_t *c = calloc(1, sizeof *c);
  int ok = r && c && cfd >= 0 && ufd >= 0 && read_template(env, argv[4], &c->t) == 0;
  if (ok) {
    c->relay = r;
    c->id = id;
    c->cfd = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
    c->ufd = fcntl(ufd, F_DUPFD_CLOEXEC, 0);
    c->upstream_used_at = used_at;
    c->idle_since = now_ms();
    // The copies share libuv's file descriptions, non-blocking already.
    ok = c->cfd >= 0 && c->ufd >= 0 && (fcntl(c->cfd, F_GETFL) & O_NONBLOCK) &&
         (fcntl(c->ufd, F_GETFL) & O_NONBLOCK);
    if (!ok) {
      if (c->cfd >= 0) close(c->cfd);
      if (c->ufd >= 0) close(c->ufd);
      template_free(&c->t);
    }
  }
  if (ok) {
    pthread_mutex_lock(&r->lock);
    // A stopped relay's thread would never take it.
    ok = !r->stop;
    if (ok) {
      c->next = r->incoming;
      r->incoming = c;
    }
    pthread_mutex_unlock(&r->lock);
    if (ok) {
      wake(r);
    } else {
      close(c->cfd);
      close(c->ufd);
      template_free(&c->t);
    }
  }
  if (!ok) free(c);
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

/** expire(relay, machineId | null): the connections' templates (all, or one machine's) end. */
static napi_value js_expire(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype type;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = relay_of(env, argv[0]);
  CHECK(napi_typeof(env, argv[1], &type));
  char *id = type == napi_string ? get_string(env, argv[1]) : NULL;
  pthread_mutex_lock(&r->lock);
  if (!id) {
    r->expire_all = 1;
  } else {
    char **ids = realloc(r->expire_ids, (r->n_expire + 1) * sizeof *ids);
    if (ids) {
      r->expire_ids = ids;
      ids[r->n_expire++] = id;
    } else {
      free(id);
      r->expire_all = 1;
    }
  }
  pthread_mutex_unlock(&r->lock);
  wake(r);
  return NULL;
}

static napi_value set_flag(napi_env env, napi_callback_info info, size_t offset) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = relay_of(env, argv[0]);
  pthread_mutex_lock(&r->lock);
  *(int *)((char *)r + offset) = 1;
  pthread_mutex_unlock(&r->lock);
  wake(r);
  return NULL;
}

/** closeIdle(relay): connections between requests end now, the others after theirs. */
static napi_value js_close_idle(napi_env env, napi_callback_info info) {
  return set_flag(env, info, offsetof(relay_t, close_idle));
}

/** closeAll(relay): every connection ends now. */
static napi_value js_close_all(napi_env env, napi_callback_info info) {
  return set_flag(env, info, offsetof(relay_t, close_all));
}

/** stop(relay): the thread ends and its connections close (for a server that has closed). */
static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = relay_of(env, argv[0]);
  relay_stop(r);
  if (!r->released) {
    r->released = 1;
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  }
  return NULL;
}

// The pure parts, for differential tests against http1.ts and app-gateway.ts.

static void set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

static void set_boolean(napi_env env, napi_value obj, const char *name, bool value) {
  napi_value v;
  napi_get_boolean(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

/** requestHead(config, template, head): the machine's head, or null (handed back). */
static napi_value js_request_head(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  config_t cfg;
  template_t t;
  void *data;
  size_t len;
  if (read_config(env, argv[0], &cfg) || read_template(env, argv[1], &t)) {
    config_free(&cfg);
    napi_throw_type_error(env, NULL, "app-relay: bad config or template");
    return NULL;
  }
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  buf_t out = {0};
  char method[8];
  long end = head_end(data, len);
  if (end == (long)len && request_head(&cfg, &t, data, len, &out, method)) {
    void *copy;
    napi_create_buffer_copy(env, out.len, out.p, &copy, &result);
  } else {
    napi_get_null(env, &result);
  }
  buf_free(&out);
  config_free(&cfg);
  template_free(&t);
  return result;
}

/** responseHead(config, head, method, closing): {head, framing, length, close} or null. */
static napi_value js_response_head(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  config_t cfg;
  if (read_config(env, argv[0], &cfg)) {
    config_free(&cfg);
    napi_throw_type_error(env, NULL, "app-relay: bad config");
    return NULL;
  }
  void *data;
  size_t len;
  char method[8] = {0};
  size_t mlen;
  bool closing;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &len));
  CHECK(napi_get_value_string_latin1(env, argv[2], method, sizeof method, &mlen));
  CHECK(napi_get_value_bool(env, argv[3], &closing));
  buf_t out = {0};
  response_t res = {0};
  long end = head_end(data, len);
  if (end == (long)len && response_head(&cfg, data, len, method, closing, &out, &res)) {
    void *copy;
    static const char *framings[] = {"none", "length", "chunked"};
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, out.len, out.p, &copy, &v);
    napi_set_named_property(env, result, "head", v);
    napi_create_string_utf8(env, framings[res.framing], NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "framing", v);
    set_number(env, result, "length", (double)res.length);
    set_boolean(env, result, "close", res.close);
  } else {
    napi_get_null(env, &result);
  }
  buf_free(&out);
  config_free(&cfg);
  return result;
}

/** scanChunked(pieces): bytes of the pieces that belong to the body, or -1; and whether it ended. */
static napi_value js_scan_chunked(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t n;
  CHECK(napi_get_array_length(env, argv[0], &n));
  chunked_t scanner = {0}, *c = &scanner;
  double total = 0;
  for (uint32_t k = 0; k < n && c->state != C_DONE; k++) {
    napi_value piece;
    void *data;
    size_t len;
    CHECK(napi_get_element(env, argv[0], k, &piece));
    CHECK(napi_get_buffer_info(env, piece, &data, &len));
    long took = chunked_push(c, data, len);
    if (took < 0) {
      total = -1;
      break;
    }
    total += (double)took;
  }
  napi_create_object(env, &result);
  set_number(env, result, "bytes", total);
  set_boolean(env, result, "done", c->state == C_DONE);
  return result;
}

/** activity(relay): the machines that had requests since the last call. */
static napi_value js_activity(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = relay_of(env, argv[0]);
  pthread_mutex_lock(&r->lock);
  char **ids = r->active;
  size_t n = r->n_active;
  r->active = NULL;
  r->n_active = r->cap_active = 0;
  pthread_mutex_unlock(&r->lock);
  napi_create_array_with_length(env, n, &result);
  for (size_t k = 0; k < n; k++) {
    napi_create_string_utf8(env, ids[k], NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, result, (uint32_t)k, v);
    free(ids[k]);
  }
  free(ids);
  return result;
}

/** stats(relay): requests relayed here so far (tests use it to see this path was taken). */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  relay_t *r = relay_of(env, argv[0]);
  double relayed = (double)__atomic_load_n(&r->relayed, __ATOMIC_RELAXED);
  CHECK(napi_create_double(env, relayed, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"adopt", NULL, js_adopt, NULL, NULL, NULL, napi_default, NULL},
      {"expire", NULL, js_expire, NULL, NULL, NULL, napi_default, NULL},
      {"closeIdle", NULL, js_close_idle, NULL, NULL, NULL, napi_default, NULL},
      {"closeAll", NULL, js_close_all, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"activity", NULL, js_activity, NULL, NULL, NULL, napi_default, NULL},
      {"requestHead", NULL, js_request_head, NULL, NULL, NULL, napi_default, NULL},
      {"responseHead", NULL, js_response_head, NULL, NULL, NULL, napi_default, NULL},
      {"scanChunked", NULL, js_scan_chunked, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof *props, props) != napi_ok)
    return NULL;
  return exports;
}
