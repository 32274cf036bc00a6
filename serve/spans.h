/*
 * spans.h - the buffers backing reads land in, pooled across the server.
 *
 * Every chunk decoded needs its span (the container bytes it decodes from)
 * in memory for the length of one load.  Allocated per load, each span
 * buffer was a fresh mmap whose every page faulted in as io_uring filled
 * it: a 266 MB view read took ~20,000 such faults, and twice that for a
 * lower view, whose smaller faces put more chunks in each 1 MiB read.
 * Loads take their buffers from this pool and give them back; the pool
 * keeps up to QSV_SPAN_POOL bytes of them, none under QSV_SPAN_KEEP_MIN or
 * over QSV_SPAN_KEEP_MAX (the
 * spans of default 1 MiB chunks are about that size; spans of 16 MiB chunks
 * are rare and would hold the pool's bytes in two buffers), and frees the
 * rest.  It is one server-wide bound, however many threads read: a buffer
 * kept per thread (as before) grew with the thread count.  The pool never
 * allocates: what it keeps was in flight, within the pin budget, a moment
 * before (README's memory bound counts it once more, for the idle time).
 */
#ifndef QSV_SPANS_H
#define QSV_SPANS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define QSV_SPAN_POOL (32u << 20)
#define QSV_SPAN_KEEP_MAX (4u << 20)
#define QSV_SPAN_KEEP_MIN (64u << 10)   /* smaller ones are malloc's, which reuses them
					 * without faults, and must not take a big one */
#define QSV_SPAN_SLOTS 64

typedef struct qsv_spans {
	pthread_mutex_t mu;
	size_t bytes, n;                 /* kept: their capacities, their count */
	uint64_t reused, allocated;      /* takes of KEEP_MIN or more served from the pool, and not */
	struct { uint8_t *p; size_t cap; } kept[QSV_SPAN_SLOTS];
} qsv_spans;

int qsv_spans_init(qsv_spans *s);
void qsv_spans_destroy(qsv_spans *s);
/* A buffer of at least LEN bytes (*cap gets its size), or NULL. */
uint8_t *qsv_span_take(qsv_spans *s, size_t len, size_t *cap);
/* Give back what qsv_span_take gave (NULL is ignored). */
void qsv_span_give(qsv_spans *s, uint8_t *p, size_t cap);
/* The pool's figures, for the stats file. */
void qsv_spans_stats(qsv_spans *s, size_t *kept_bytes, uint64_t *reused, uint64_t *allocated);

#endif
