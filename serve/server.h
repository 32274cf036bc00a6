/*
 * server.h - the serving layer of qstorefs: everything between "read N bytes
 * at OFF of this file of this container version" and the codec, with no
 * FUSE in it (fs/ is a thin adapter on top; tests drive it directly).
 *
 *   server   the shared state: settings, counters, the decoded-chunk cache
 *            (cache.h), the prefetch workers (prefetch.h), the logger
 *   version  one opened container version and its reader pool (version.h)
 *   file     one open file of a version: its prefetch window
 *   read     map the range, fetch the chunks into the cache (fetch.h: one
 *            io_uring batch, decoded once per chunk however many readers
 *            want it), and hand back iovecs that point into the cache
 */
#ifndef QSV_SERVER_H
#define QSV_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/uio.h>

#include "budget.h"
#include "cache.h"
#include "log.h"
#include "spans.h"
#include "qstore_chunk.h"

#define QSV_MAX_PIECES 64

typedef struct qsv_counters {
	atomic_uint_fast64_t reads, read_bytes, decoded_bytes, decode_ns, errors, backing_bytes;
} qsv_counters;

typedef struct qsv_prefetcher qsv_prefetcher;
typedef struct qsv_version qsv_version;

typedef struct qsv_server {
	qsv_log *log;
	qsv_cache *cache;
	qsv_prefetcher *pf;
	qsv_counters n;
	unsigned low_views;                  /* QS_OPEN_INT flags: the lower views each
					      * version presents (set before the first open) */
	atomic_uint_fast64_t prefetch_max;   /* SIGHUP may change it: atomic */
	atomic_uint_fast64_t next_gen;       /* version generations */
	pthread_key_t io_key;                /* per-thread io_uring */
	qsv_spans spans;                     /* span buffers (spans.h) */
	qsv_budget pins;                     /* bytes reads in flight may pin (budget.h) */
	atomic_int idle_readers;             /* pooled readers, all versions: at most
					      * QSV_MAX_IDLE_READERS (version.c) */
	pthread_mutex_t seen_mu;             /* one log line per failing chunk per minute */
	struct { uint64_t gen, key, when; } seen[64];
	unsigned seen_next;
} qsv_server;

/* A server with a cache of CACHE_SIZE bytes and prefetch windows up to
 * PREFETCH_MAX, without prefetch threads yet.  NULL when out of memory. */
qsv_server *qsv_server_new(uint64_t cache_size, uint64_t prefetch_max, qsv_log *log);
/* Start WORKERS prefetch threads (0: no prefetch).  Separate from creating
 * the server because threads do not survive fork(): a daemon that forks
 * into the background starts them after it has (a backgrounded qstorefs
 * once queued prefetch jobs that no thread ever ran).  0, or -1 if they
 * cannot start. */
int qsv_server_start_workers(qsv_server *s, unsigned workers);
/* Stops the workers and frees everything; every version must be gone. */
void qsv_server_free(qsv_server *s);

/* An open file: a version, a file of one of its views, a prefetch window.
 * Sequential reads double the window up to prefetch_max; any other read
 * resets it, so random readers pay nothing. */
typedef struct qsv_window {
	uint64_t next_off;         /* where a sequential read would start */
	uint64_t window;           /* current prefetch window in bytes */
	uint64_t prefetched_to;    /* prefetch issued up to here */
} qsv_window;

typedef struct qsv_file {
	qsv_version *v;
	int view;
	size_t file;
	pthread_mutex_t mu;
	qsv_window w;
} qsv_file;

/* Takes a reference to V (released by qsv_file_close). */
void qsv_file_open(qsv_file *f, qsv_version *v, int view, size_t file);
void qsv_file_close(qsv_file *f);

/* The window after a read of [off, off + len) with windows up to MAX: the
 * range to prefetch now in [*from, *to) (empty when *to <= *from).  Pure:
 * unit-tested alone. */
void qsv_window_after_read(qsv_window *w, uint64_t max, uint64_t off, uint64_t len, uint64_t *from, uint64_t *to);

/* The bytes of a read: iovecs into held cache entries, or (a range of very
 * many small pieces) into one bounce buffer. */
typedef struct qsv_reply {
	struct iovec iov[QSV_MAX_PIECES];
	qsv_entry *e[QSV_MAX_PIECES];
	size_t n, total;
	uint8_t *buf;
	uint64_t pinned;           /* taken from the server's budget until released */
} qsv_reply;

/* Read SIZE bytes at OFF of F (short only at end of file) into *r and queue
 * prefetch.  0, or -EIO (logged once, naming container, file, tensor and
 * chunk) / -ENOMEM.  The caller sends r->iov, then qsv_reply_release(). */
int qsv_read(qsv_server *s, qsv_file *f, uint64_t off, size_t size, qsv_reply *r);
void qsv_reply_release(qsv_server *s, qsv_reply *r);

/* One log line per failing chunk per minute: the kernel retries a failed
 * read in smaller pieces, which would repeat the same line many times.
 * Returns 1 if this failure should be logged. */
int qsv_first_report(qsv_server *s, uint64_t gen, uint64_t key);
uint64_t qsv_now_ns(void);

#endif
