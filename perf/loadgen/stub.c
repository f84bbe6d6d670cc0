/* A compiled streaming OpenAI-compatible stub server whose ground truth starts at the kernel.
 *
 * The side-by-side benchmark (perf/loadgen/bench.py) judges each client against this stub's
 * truth. The Python stub (stub_server.py) stamps a request when its event loop gets to it, so
 * with 1,024 requests arriving together it stamps the later ones late and charges its own
 * queueing to the client. This stub takes the request's arrival time from the kernel (TCP
 * receive timestamp, SO_TIMESTAMPNS, taken when loopback delivers the segment, i.e. inside
 * the client's send) and the write time just before each write(2), so
 *     truth TTFT = first write - kernel arrival,   truth ITL = time between writes.
 * One thread, epoll, non-blocking sockets, a binary heap of write deadlines.
 *
 * Same wire behaviour and flags as stub_server.py's happy path (no fault injection):
 *   POST /v1/completions, /v1/chat/completions: SSE, max_tokens (or max_completion_tokens)
 *     one-token events " tok", --events-per-write per chunk, first after --ttft-ms, then one
 *     write every --itl-ms (0: --burst writes per turn, round robin over streams); usage
 *     (prompt tokens = whitespace-separated words) when stream_options.include_usage is true;
 *     then data: [DONE].
 *   GET /truth (summary, same shape as stub_server.py), POST /reset, GET /health, /v1/models.
 * Prints "READY <port>" once listening.
 *
 * --procs N: N processes (fork) share the port through SO_REUSEPORT, the kernel spreading new
 * connections over them, so the stub scales across cores and is not what limits a client with
 * many workers. Each process keeps its own truth: with N > 1, GET /truth and POST /reset reach
 * one of them (use N > 1 for throughput, N = 1 for accuracy).
 *
 *   cc -O2 -o stub perf/loadgen/stub.c -lm && ./stub --port 0 --ttft-ms 100 --itl-ms 20
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef int64_t ns_t;

static double opt_ttft_ms = 100, opt_itl_ms = 20;
static int opt_per_write = 1, opt_burst = 8, opt_port = 0, opt_procs = 1;

static ns_t now_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (ns_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static ns_t mono(void) { return now_ns(CLOCK_MONOTONIC); }

/* ---- growable buffers ------------------------------------------------------------------ */
typedef struct { char *p; size_t len, cap; } buf_t;
static void buf_reserve(buf_t *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) { perror("realloc"); exit(2); }
    b->cap = cap;
}
static void buf_add(buf_t *b, const void *d, size_t n) { buf_reserve(b, n); memcpy(b->p + b->len, d, n); b->len += n; }
static void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < room) { b->len += n; return; }
        buf_reserve(b, (size_t)n + 1);
    }
}
static void buf_chunk(buf_t *b, const char *d, size_t n) {  /* HTTP/1.1 chunked framing */
    buf_printf(b, "%zx\r\n", n);
    buf_add(b, d, n);
    buf_add(b, "\r\n", 2);
}

typedef struct { ns_t *v; size_t n, cap; } vec_t;
static void vec_push(vec_t *a, ns_t x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 65536;
        a->v = realloc(a->v, a->cap * sizeof(ns_t));
        if (!a->v) { perror("realloc"); exit(2); }
    }
    a->v[a->n++] = x;
}

/* ---- truth ----------------------------------------------------------------------------- */
static vec_t truth_ttft, truth_gaps;
static long truth_tokens, truth_requests;

static int cmp_ns(const void *a, const void *b) {
    ns_t x = *(const ns_t *)a, y = *(const ns_t *)b;
    return (x > y) - (x < y);
}
static double pct(const ns_t *s, size_t n, double q) {  /* linear interpolation, as numpy/Python */
    double k = (double)(n - 1) * q / 100.0;
    size_t lo = (size_t)k, hi = lo + 1 < n ? lo + 1 : n - 1;
    return ((double)s[lo] + ((double)s[hi] - (double)s[lo]) * (k - (double)lo)) * 1e-9;
}
static void stats_json(buf_t *b, vec_t *a) {
    if (a->n == 0) { buf_printf(b, "null"); return; }
    ns_t *s = malloc(a->n * sizeof(ns_t));
    memcpy(s, a->v, a->n * sizeof(ns_t));
    qsort(s, a->n, sizeof(ns_t), cmp_ns);
    long double sum = 0;
    for (size_t i = 0; i < a->n; i++) sum += s[i];
    buf_printf(b, "{\"mean\": %.9f, \"median\": %.9f, \"p99\": %.9f, \"n\": %zu}",
               (double)(sum / a->n) * 1e-9, pct(s, a->n, 50), pct(s, a->n, 99), a->n);
    free(s);
}

/* ---- connections and streams ----------------------------------------------------------- */
typedef struct conn {
    int fd;
    buf_t in, out;          /* unread request bytes; bytes the kernel has not taken yet */
    size_t out_off;
    ns_t t_arrival;         /* kernel arrival of the request at the head of `in` (0: none) */
    int busy;               /* a stream is in progress */
    int want_out;           /* EPOLLOUT registered */
    int closing;
    /* the stream */
    int chat, usage, n, sent, prompt_tokens;
    ns_t t0, last_write, deadline;
    long heap_pos;          /* -1: not in the deadline heap */
    struct conn *next_ready; int in_ready;
    struct conn *next_dead;
} conn_t;

static int epfd;
static conn_t **heap; static long heap_n, heap_cap;
static conn_t *ready_head, *ready_tail;
static conn_t *graveyard;  /* closed connections, freed at the end of a loop turn */
static ns_t rt_minus_mono;  /* CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed per read */

static void heap_swap(long i, long j) {
    conn_t *t = heap[i]; heap[i] = heap[j]; heap[j] = t;
    heap[i]->heap_pos = i; heap[j]->heap_pos = j;
}
static void heap_up(long i) {
    while (i > 0) { long p = (i - 1) / 2; if (heap[p]->deadline <= heap[i]->deadline) break; heap_swap(i, p); i = p; }
}
static void heap_down(long i) {
    for (;;) {
        long l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && heap[l]->deadline < heap[m]->deadline) m = l;
        if (r < heap_n && heap[r]->deadline < heap[m]->deadline) m = r;
        if (m == i) return;
        heap_swap(i, m); i = m;
    }
}
static void heap_push(conn_t *c) {
    if (heap_n == heap_cap) { heap_cap = heap_cap ? heap_cap * 2 : 4096; heap = realloc(heap, heap_cap * sizeof *heap); }
    heap[heap_n] = c; c->heap_pos = heap_n++; heap_up(c->heap_pos);
}
static conn_t *heap_pop(void) {
    conn_t *top = heap[0];
    heap_swap(0, heap_n - 1); heap_n--; top->heap_pos = -1;
    if (heap_n) heap_down(0);
    return top;
}
static void heap_remove(conn_t *c) {
    long i = c->heap_pos;
    if (i < 0) return;
    heap_swap(i, heap_n - 1); heap_n--; c->heap_pos = -1;
    if (i < heap_n) { heap_down(i); heap_up(i); }
}
static void ready_push(conn_t *c) {
    if (c->in_ready || c->closing) return;
    c->in_ready = 1; c->next_ready = NULL;
    if (ready_tail) ready_tail->next_ready = c; else ready_head = c;
    ready_tail = c;
}

static void set_events(conn_t *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void conn_close(conn_t *c) {
    if (c->closing) return;
    c->closing = 1;
    c->busy = 0;
    heap_remove(c);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->next_dead = graveyard;  /* other pointers to it may live until the end of this turn */
    graveyard = c;
}

static void bury(void) {
    conn_t *keep = NULL;
    while (graveyard) {
        conn_t *c = graveyard;
        graveyard = c->next_dead;
        if (c->in_ready) { c->next_dead = keep; keep = c; continue; }  /* still queued: next turn */
        free(c->in.p); free(c->out.p); free(c);
    }
    graveyard = keep;
}

/* Push queued output to the kernel; returns 0 when all written, 1 when blocked, -1 on error. */
static int flush_out(conn_t *c) {
    while (c->out_off < c->out.len) {
        ssize_t w = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) { set_events(c, 1); return 1; }
            if (errno == EINTR) continue;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out.len = c->out_off = 0;
    set_events(c, 0);
    return 0;
}

static void reply_json(conn_t *c, int status, const char *reason, const char *body, size_t n) {
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", status, reason, n);
    buf_add(&c->out, body, n);
}

/* ---- tiny JSON helpers (the request bodies come from benchmark clients) ------------------ */
static const char *find_key(const char *b, size_t n, const char *key, const char *from) {
    /* the last occurrence of "key" followed by optional spaces and ':' at or after `from` */
    size_t kl = strlen(key);
    const char *hit = NULL, *end = b + n;
    for (const char *p = from; p + kl + 2 < end; p++) {
        p = memchr(p, '"', (size_t)(end - p));
        if (!p || p + kl + 2 >= end) break;
        if (memcmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            const char *q = p + kl + 2;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
            if (q < end && *q == ':') {
                q++;
                while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
                hit = q;
            }
        }
    }
    return hit;
}

static int is_space_cp(unsigned cp) {  /* what Python's str.split() splits on */
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* Count whitespace-separated words in the JSON string starting at p (at the opening quote),
 * or the elements of a JSON array of token ids. */
static int count_words(const char *p, const char *end) {
    if (p >= end) return 0;
    if (*p == '[') {
        int n = 0, any = 0;
        for (p++; p < end && *p != ']'; p++) {
            if (*p == ',') n++;
            else if (*p != ' ') any = 1;
        }
        return any ? n + 1 : 0;
    }
    if (*p != '"') return 0;
    int words = 0, in_word = 0;
    for (p++; p < end && *p != '"';) {
        unsigned cp;
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\' && p + 1 < end) {
            char e = p[1];
            p += 2;
            if (e == 'n') cp = '\n'; else if (e == 't') cp = '\t'; else if (e == 'r') cp = '\r';
            else if (e == 'f') cp = '\f'; else if (e == 'b') cp = '\b';
            else if (e == 'u' && p + 4 <= end) { char h[5] = {p[0], p[1], p[2], p[3], 0}; cp = (unsigned)strtoul(h, NULL, 16); p += 4; }
            else cp = (unsigned char)e;
        } else if (ch < 0x80) { cp = ch; p++; }
        else if ((ch & 0xe0) == 0xc0 && p + 1 < end) { cp = ((ch & 0x1fu) << 6) | (p[1] & 0x3fu); p += 2; }
        else if ((ch & 0xf0) == 0xe0 && p + 2 < end) { cp = ((ch & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu); p += 3; }
        else { cp = 0x10000; p += (ch & 0xf8) == 0xf0 ? 4 : 1; }
        if (is_space_cp(cp)) in_word = 0;
        else if (!in_word) { in_word = 1; words++; }
    }
    return words;
}

/* ---- the stream ------------------------------------------------------------------------- */
static const char SSE_TEXT[] = "data: {\"id\":\"c\",\"object\":\"text_completion\",\"model\":\"stub\",\"choices\":[{\"index\":0,\"text\":\" tok\",\"logprobs\":null,\"finish_reason\":null}]}\n\n";
static const char SSE_TEXT_END[] = "data: {\"id\":\"c\",\"object\":\"text_completion\",\"model\":\"stub\",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}]}\n\n";
static const char SSE_CHAT[] = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"stub\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok\"},\"finish_reason\":null}]}\n\n";
static const char SSE_CHAT_FIRST[] = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"stub\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
static const char SSE_CHAT_END[] = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"stub\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
static const char STREAM_HEAD[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
static char *full_text, *full_chat; static size_t full_text_n, full_chat_n;  /* opt_per_write events */

static void process_input(conn_t *c);

static void stream_end(conn_t *c) {
    const char *fin = c->chat ? SSE_CHAT_END : SSE_TEXT_END;
    buf_t tail = {0};
    buf_add(&tail, fin, strlen(fin));
    if (c->usage)
        buf_printf(&tail, "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
                   c->prompt_tokens, c->sent, c->prompt_tokens + c->sent);
    buf_add(&tail, "data: [DONE]\n\n", 14);
    buf_chunk(&c->out, tail.p, tail.len);
    buf_add(&c->out, "0\r\n\r\n", 5);
    free(tail.p);
    truth_requests++;
    c->busy = 0;
}

/* One write of up to opt_per_write events; records the truth just before write(2). */
static int stream_write(conn_t *c) {
    int k = c->n - c->sent < opt_per_write ? c->n - c->sent : opt_per_write;
    if (c->sent == 0) {
        buf_add(&c->out, STREAM_HEAD, sizeof STREAM_HEAD - 1);
        if (c->chat) buf_chunk(&c->out, SSE_CHAT_FIRST, sizeof SSE_CHAT_FIRST - 1);
    }
    const char *ev = c->chat ? SSE_CHAT : SSE_TEXT;
    size_t evn = c->chat ? sizeof SSE_CHAT - 1 : sizeof SSE_TEXT - 1;
    if (k == opt_per_write) {
        if (c->chat) buf_add(&c->out, full_chat, full_chat_n); else buf_add(&c->out, full_text, full_text_n);
    } else {
        buf_printf(&c->out, "%zx\r\n", evn * (size_t)k);
        for (int i = 0; i < k; i++) buf_add(&c->out, ev, evn);
        buf_add(&c->out, "\r\n", 2);
    }
    c->sent += k;
    truth_tokens += k;
    int last = c->sent >= c->n;
    if (last) stream_end(c);  /* the tail goes out in the same write as the last tokens */
    ns_t t = mono();
    if (c->sent == k) vec_push(&truth_ttft, t - c->t_arrival);
    else vec_push(&truth_gaps, t - c->last_write);
    for (int i = 1; i < k; i++) vec_push(&truth_gaps, 0);
    c->last_write = t;
    if (last) c->t_arrival = 0;
    int r = flush_out(c);
    if (r < 0) { conn_close(c); return -1; }
    return r;
}

static void stream_schedule(conn_t *c) {
    if (c->closing || !c->busy || c->heap_pos >= 0 || c->in_ready || c->out.len) return;
    if (opt_itl_ms == 0 && c->sent > 0) { ready_push(c); return; }
    ns_t step = (ns_t)(opt_itl_ms * 1e6);
    c->deadline = c->t0 + (ns_t)(c->sent / opt_per_write) * step;
    if (c->deadline <= mono() && opt_itl_ms == 0) ready_push(c);
    else heap_push(c);
}

static void start_stream(conn_t *c, const char *path, const char *body, size_t blen) {
    c->chat = strstr(path, "chat/completions") != NULL;
    const char *v = find_key(body, blen, "max_tokens", body);
    if (!v) v = find_key(body, blen, "max_completion_tokens", body);
    c->n = v ? atoi(v) : 16;
    if (c->n < 1) c->n = 1;
    v = find_key(body, blen, "include_usage", body);
    c->usage = v && (size_t)(body + blen - v) >= 4 && memcmp(v, "true", 4) == 0;
    v = c->chat ? find_key(body, blen, "content", body) : find_key(body, blen, "prompt", body);
    c->prompt_tokens = v ? count_words(v, body + blen) : 0;
    c->sent = 0;
    c->busy = 1;
    c->t0 = c->t_arrival + (ns_t)(opt_ttft_ms * 1e6);
    stream_schedule(c);
}

/* After a write or a flush: the next write of this stream, or the next request. */
static void carry_on(conn_t *c) {
    if (c->closing || c->out.len) return;
    if (c->busy) stream_schedule(c);
    else if (c->in.len) process_input(c);
}

/* ---- requests --------------------------------------------------------------------------- */
static void handle(conn_t *c, const char *method, const char *path, const char *body, size_t blen) {
    if (!strcmp(method, "GET") && !strcmp(path, "/truth")) {
        buf_t b = {0};
        buf_printf(&b, "{\"requests\": %ld, \"tokens\": %ld, \"ttft\": ", truth_requests, truth_tokens);
        stats_json(&b, &truth_ttft);
        buf_printf(&b, ", \"itl\": ");
        stats_json(&b, &truth_gaps);
        buf_printf(&b, ", \"arrival\": \"kernel\"}");
        reply_json(c, 200, "OK", b.p, b.len);
        free(b.p);
    } else if (!strcmp(method, "POST") && !strcmp(path, "/reset")) {
        truth_ttft.n = truth_gaps.n = 0;
        truth_tokens = truth_requests = 0;
        reply_json(c, 200, "OK", "{\"ok\": true}", 12);
    } else if (!strcmp(method, "GET") && (!strcmp(path, "/health") || !strcmp(path, "/v1/models"))) {
        static const char ok[] = "{\"status\": \"ok\", \"data\": [{\"id\": \"stub\"}]}";
        reply_json(c, 200, "OK", ok, sizeof ok - 1);
    } else if (!strcmp(method, "POST") && (!strcmp(path, "/v1/completions") || !strcmp(path, "/v1/chat/completions"))) {
        start_stream(c, path, body, blen);
        return;
    } else {
        static const char nf[] = "{\"error\": {\"message\": \"no such route\"}}";
        reply_json(c, 404, "Not Found", nf, sizeof nf - 1);
    }
    c->t_arrival = 0;
    if (flush_out(c) < 0) conn_close(c);
}

/* Frame and dispatch the request at the head of c->in (if complete and the connection idle). */
static void process_input(conn_t *c) {
    while (!c->busy && !c->closing && c->in.len) {
        char *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head_n = (size_t)(end - c->in.p) + 4, clen = 0;
        char *line = memchr(c->in.p, '\n', head_n);
        for (char *p = line ? line + 1 : end; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end + 2 - p));
            if (!nl) break;
            if (!strncasecmp(p, "content-length:", 15)) clen = strtoul(p + 15, NULL, 10);
            p = nl + 1;
        }
        if (c->in.len < head_n + clen) return;
        char method[16] = {0}, path[256] = {0};
        sscanf(c->in.p, "%15s %255s", method, path);
        char *body = malloc(clen + 1);
        memcpy(body, c->in.p + head_n, clen);
        body[clen] = 0;
        size_t used = head_n + clen;
        memmove(c->in.p, c->in.p + used, c->in.len - used);
        c->in.len -= used;
        if (!c->t_arrival) c->t_arrival = mono();
        ns_t arrival = c->t_arrival;
        handle(c, method, path, body, clen);
        free(body);
        if (c->closing) return;
        /* a request pipelined behind this one arrived with it (rare; clients here do not pipeline) */
        if (c->in.len && !c->t_arrival) c->t_arrival = arrival;
    }
}

static void on_readable(conn_t *c) {
    for (;;) {
        buf_reserve(&c->in, 65536);
        struct iovec iov = {.iov_base = c->in.p + c->in.len, .iov_len = c->in.cap - c->in.len};
        char cbuf[256];
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
        ssize_t r = recvmsg(c->fd, &msg, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_close(c);
            return;
        }
        if (r == 0) { conn_close(c); return; }
        if (c->in.len == 0 && !c->t_arrival) {
            ns_t t = 0;
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                    t = (ns_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - rt_minus_mono;
                }
            }
            ns_t m = mono();
            c->t_arrival = (t > 0 && t <= m) ? t : m;  /* no kernel stamp: the read itself */
        }
        c->in.len += (size_t)r;
    }
    process_input(c);
}

static void on_accept(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->heap_pos = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

static int is_child = 0;

/* A listening socket on addr (port 0: any, written back), in the port's SO_REUSEPORT group. */
static int listener(struct sockaddr_in *addr) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(lfd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);  /* stamps queued before accept */
    if (bind(lfd, (struct sockaddr *)addr, sizeof *addr) || listen(lfd, 4096)) { perror("bind/listen"); return -1; }
    socklen_t alen = sizeof *addr;
    getsockname(lfd, (struct sockaddr *)addr, &alen);
    return lfd;
}

static void usage_exit(const char *argv0) {
    fprintf(stderr, "usage: %s [--port N] [--ttft-ms F] [--itl-ms F] [--events-per-write K] [--burst B] [--procs N]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) usage_exit(argv[0]);
        if (!strcmp(argv[i], "--port")) opt_port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ttft-ms")) opt_ttft_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--itl-ms")) opt_itl_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--events-per-write")) opt_per_write = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--burst")) opt_burst = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--procs")) opt_procs = atoi(argv[++i]);
        else usage_exit(argv[0]);
    }
    if (opt_per_write < 1 || opt_burst < 1 || opt_procs < 1) usage_exit(argv[0]);
    signal(SIGPIPE, SIG_IGN);
    buf_t ft = {0}, fc = {0};
    buf_printf(&ft, "%zx\r\n", (sizeof SSE_TEXT - 1) * (size_t)opt_per_write);
    buf_printf(&fc, "%zx\r\n", (sizeof SSE_CHAT - 1) * (size_t)opt_per_write);
    for (int i = 0; i < opt_per_write; i++) { buf_add(&ft, SSE_TEXT, sizeof SSE_TEXT - 1); buf_add(&fc, SSE_CHAT, sizeof SSE_CHAT - 1); }
    buf_add(&ft, "\r\n", 2); buf_add(&fc, "\r\n", 2);
    full_text = ft.p; full_text_n = ft.len; full_chat = fc.p; full_chat_n = fc.len;

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int lfd = listener(&addr);
    if (lfd < 0) return 1;
    int joined[2];  /* each other process writes one byte here once it listens on the port */
    if (pipe(joined) < 0) { perror("pipe"); return 1; }
    for (int k = 1; k < opt_procs; k++) {  /* the others join the port's SO_REUSEPORT group */
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);  /* they end with the first */
            is_child = 1;
            close(lfd);
            lfd = listener(&addr);
            if (lfd < 0) return 1;
            if (write(joined[1], "j", 1) != 1) return 1;
            break;
        }
    }
    if (!is_child) {  /* wait until every other process has joined */
        char c;
        for (int k = 1; k < opt_procs; k++)
            if (read(joined[0], &c, 1) != 1) { perror("stub: a process did not join"); return 1; }
    }
    close(joined[0]);
    close(joined[1]);
    epfd = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev);
    if (!is_child) {  /* the first process announces the port once all have joined it */
        printf("READY %d\n", ntohs(addr.sin_port));
        fflush(stdout);
    }

    struct epoll_event evs[512];
    for (;;) {
        struct timespec tmo, *tp = &tmo;
        if (ready_head) tmo = (struct timespec){0, 0};
        else if (heap_n) {
            ns_t d = heap[0]->deadline - mono();
            if (d < 0) d = 0;
            tmo = (struct timespec){d / 1000000000LL, d % 1000000000LL};
        } else tp = NULL;
        int n = epoll_pwait2(epfd, evs, 512, tp, NULL);
        if (n < 0 && errno != EINTR) { perror("epoll_pwait2"); return 1; }
        rt_minus_mono = now_ns(CLOCK_REALTIME) - mono();
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (!c) { on_accept(lfd); continue; }
            if (c->closing) continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) { conn_close(c); continue; }
            if (evs[i].events & EPOLLOUT) {
                if (flush_out(c) < 0) { conn_close(c); continue; }
                carry_on(c);
            }
            if (!c->closing && (evs[i].events & EPOLLIN)) on_readable(c);
        }
        /* due deadlines (first tokens; every token when --itl-ms > 0) */
        ns_t now = mono();
        while (heap_n && heap[0]->deadline <= now) {
            conn_t *c = heap_pop();
            if (c->out.len) continue;  /* blocked: the EPOLLOUT flush carries on */
            stream_write(c);
            carry_on(c);
        }
        /* zero-delay streams: --burst writes each, round robin */
        conn_t *stop = ready_tail;
        while (ready_head) {
            conn_t *c = ready_head;
            ready_head = c->next_ready;
            if (!ready_head) ready_tail = NULL;
            for (int b = 0; b < opt_burst && c->busy && !c->closing && !c->out.len; b++) stream_write(c);
            c->in_ready = 0;
            carry_on(c);
            if (c == stop) break;
        }
        bury();
    }
}
