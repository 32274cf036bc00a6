/*
 * cache.h - the decoded-chunk cache shared by every open file of every
 * container version (entries are keyed by (version gen, chunk key)).
 *
 * Bounded by bytes; least recently used entries that nobody holds are
 * evicted first.  Concurrent requests for the same chunk decode it once:
 * the first becomes its loader, the others wait for it (DwarFS's design).
 */
#ifndef QSV_CACHE_H
#define QSV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qsv_cache qsv_cache;
typedef struct qsv_entry qsv_entry;

typedef struct qsv_cache_stats {
	uint64_t capacity, used, entries;
	uint64_t pooled;                /* buffers kept for reuse; used + pooled <= capacity */
	uint64_t hits, misses, evictions, waits;
	uint64_t prefetch_issued, prefetch_used;
} qsv_cache_stats;

qsv_cache *qsv_cache_new(uint64_t capacity);
/* Its capacity (fixed at creation: read without the lock). */
uint64_t qsv_cache_capacity(const qsv_cache *c);
void qsv_cache_free(qsv_cache *c);

enum { QSV_GET_WAIT = 0, QSV_GET_TRY = 1, QSV_GET_PREFETCH = 2 };
/* Returns the entry for (gen, key), held by the caller.  If it is absent a
 * new entry of `size` bytes is created and *load is set: the caller must
 * fill qsv_entry_data() and call qsv_cache_publish().  An entry another
 * thread is loading is waited for in WAIT mode; TRY returns NULL with errno
 * EAGAIN instead (so a caller holding entries it must still load never waits:
 * no deadlock); PREFETCH returns NULL for any existing entry.  NULL with
 * errno ENOMEM: out of memory; EIO (WAIT): the loader failed. */
qsv_entry *qsv_cache_get(qsv_cache *c, uint64_t gen, uint64_t key, size_t size, int mode, int *load);
/* 1 if another thread is loading (gen, key), else 0; with WAIT, waits for
 * it to be published first (and returns 0).  Takes no hold: for a chunk
 * whose decode is cheaper after another's (qs_piece_after), by a caller
 * that holds nothing it must still load. */
int qsv_cache_loading(qsv_cache *c, uint64_t gen, uint64_t key, int wait);
void qsv_cache_publish(qsv_cache *c, qsv_entry *e, int ok);
void qsv_cache_put(qsv_cache *c, qsv_entry *e);   /* drop the caller's hold */
uint8_t *qsv_entry_data(qsv_entry *e);
size_t qsv_entry_size(const qsv_entry *e);
void qsv_cache_forget_gen(qsv_cache *c, uint64_t gen);   /* a container version is gone */
void qsv_cache_get_stats(qsv_cache *c, qsv_cache_stats *s);

#endif
