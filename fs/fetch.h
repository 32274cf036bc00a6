/*
 * fetch.h - getting decoded chunks into the cache: backing reads through
 * io_uring (one ring per thread, all of a request's missing chunks in one
 * submission), decoding with a pooled reader, and the prefetch workers.
 */
#ifndef QFS_FETCH_H
#define QFS_FETCH_H

#include <pthread.h>

#include "cache.h"
#include "model.h"

/* An open file.  Sequential reads double the prefetch window up to
 * prefetch_max; any other read resets it, so random readers pay nothing. */
typedef struct qfs_handle {
	qfs_model *m;
	int view;
	size_t file;
	pthread_mutex_t mu;
	uint64_t next_off;         /* where a sequential read would start */
	uint64_t window;           /* current prefetch window in bytes */
	uint64_t prefetched_to;    /* prefetch issued up to here */
	int ceiling;               /* /.qstorefs/ceiling */
	char *text;                /* the stats file: its snapshot */
	size_t text_len;
	struct qfs_handle *prev, *next;   /* every open handle (ops.c) */
} qfs_handle;

/* Hold the cache entries of pieces p[0..n) in e[0..n), loading the missing
 * ones.  Returns 0, or -EIO / -ENOMEM with nothing held. */
int qfs_fetch(qfs_model *m, int view, size_t file, const qs_piece *p, size_t n, qfs_entry **e);
/* After a read of [off, off + len): update the window, queue prefetch. */
void qfs_after_read(qfs_handle *h, uint64_t off, uint64_t len);

int qfs_prefetch_start(unsigned workers);
void qfs_prefetch_stop(void);

#endif
