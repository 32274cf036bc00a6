/*
 * fetch.h - getting decoded chunks into the cache: backing reads through
 * io_uring (one ring per thread, all of a request's missing chunks in one
 * submission; pread when a ring cannot be had), decoding with a pooled
 * reader, publishing each chunk for every thread waiting on it.
 */
#ifndef QSV_FETCH_H
#define QSV_FETCH_H

#include "version.h"

/* Hold the cache entries of pieces p[0..n) of file FILE of VIEW in e[0..n),
 * loading the missing ones.  A chunk another thread is loading is waited for
 * only after ours are loaded (no hold-and-wait: no deadlock).  Returns 0, or
 * -EIO / -ENOMEM with nothing held. */
int qsv_fetch(qsv_version *v, int view, size_t file, const qs_piece *p, size_t n, qsv_entry **e);
/* Load one piece's chunk if nobody has it or is loading it (prefetch). */
void qsv_fetch_ahead(qsv_version *v, int view, size_t file, const qs_piece *p);

/* Per-thread io state, created on first use; the destructor of the
 * server's thread key. */
void qsv_io_free(void *state);

#endif
