/*
 * daemon.h - the state of one qstorefs mount.  fs/ is the adapter between
 * FUSE and libqstore: this is the only global, like passthrough_hp's.
 */
#ifndef QFS_DAEMON_H
#define QFS_DAEMON_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cache.h"

typedef struct qfs_options {
	char *backing;             /* BACKING_DIR (absolute) */
	char *mountpoint;
	uint64_t cache_size;       /* -o cache_size= (bytes) */
	uint64_t prefetch_max;     /* -o prefetch_max= (bytes) */
	unsigned workers;          /* -o workers=: prefetch threads */
	unsigned readahead_kb;     /* -o readahead_kb=: kernel readahead of the mount */
	unsigned max_threads;      /* FUSE request threads */
	uint64_t ceiling;          /* -o ceiling=: size of /.qstorefs/ceiling, a file of
	                              zeros served from memory (measures FUSE alone) */
} qfs_options;

typedef struct qfs_counters {
	atomic_uint_fast64_t reads, read_bytes, decoded_bytes, decode_ns, errors, backing_bytes;
} qfs_counters;

typedef struct qfs_state {
	qfs_options o;
	qfs_cache *cache;
	struct fuse_session *se;
	qfs_counters n;
	atomic_int mounted;        /* kernel notifications only once mounted */
} qfs_state;

qfs_state *qfs_daemon(void);
extern const struct fuse_lowlevel_ops qfs_ops;
/* After the session loop: free the handles whose release the kernel never
 * sent (a close racing with unmount). */
void qfs_release_all(void);

#endif
