/*
 * cache.h - the decoded-chunk cache shared by every open file.
 *
 * Bounded by bytes; least recently used entries that nobody holds are
 * evicted first.  Concurrent requests for the same chunk decode it once:
 * the first becomes its loader, the others wait for it (DwarFS's design).
 */
#ifndef QFS_CACHE_H
#define QFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qfs_cache qfs_cache;
typedef struct qfs_entry qfs_entry;

typedef struct qfs_cache_stats {
	uint64_t capacity, used, entries;
	uint64_t hits, misses, evictions, waits;
	uint64_t prefetch_issued, prefetch_used;
} qfs_cache_stats;

qfs_cache *qfs_cache_new(uint64_t capacity);
void qfs_cache_free(qfs_cache *c);

enum { QFS_GET_WAIT = 0, QFS_GET_TRY = 1, QFS_GET_PREFETCH = 2 };
/* Returns the entry for (gen, key), held by the caller.  If it is absent a
 * new entry of `size` bytes is created and *load is set: the caller must
 * fill qfs_entry_data() and call qfs_cache_publish().  An entry another
 * thread is loading is waited for in WAIT mode; TRY returns NULL with errno
 * EAGAIN instead (so a caller holding entries it must still load never waits:
 * no deadlock); PREFETCH returns NULL for any existing entry.  NULL with
 * errno ENOMEM: out of memory; EIO (WAIT): the loader failed. */
qfs_entry *qfs_cache_get(qfs_cache *c, uint64_t gen, uint64_t key, size_t size, int mode, int *load);
void qfs_cache_publish(qfs_cache *c, qfs_entry *e, int ok);
void qfs_cache_put(qfs_cache *c, qfs_entry *e);   /* drop the caller's hold */
uint8_t *qfs_entry_data(qfs_entry *e);
size_t qfs_entry_size(const qfs_entry *e);
void qfs_cache_forget_gen(qfs_cache *c, uint64_t gen);   /* a container version is gone */
void qfs_cache_get_stats(qfs_cache *c, qfs_cache_stats *s);

#endif
