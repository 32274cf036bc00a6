/*
 * config.h - the configuration file (/etc/qstorefs.conf, or -o config=PATH).
 *
 *   # comment
 *   key = value
 *
 * Keys: backing, mountpoint, cache_size, prefetch_max, workers, readahead_kb,
 * lower_views, log_level, fuse_options.  Options given on the command line win over the
 * file.  An unknown key or a bad value refuses the whole file, naming its
 * line and key, before anything is mounted.
 */
#ifndef QFS_CONFIG_H
#define QFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct qfs_conf {
	char *backing, *mountpoint, *fuse_options;
	uint64_t cache_size, prefetch_max;
	unsigned workers, readahead_kb, lower_views;
	int log_level;
	/* which keys the file set */
	int has_cache_size, has_prefetch_max, has_workers, has_readahead_kb, has_log_level, has_lower_views;
} qfs_conf;

/* Parse PATH into *c.  Returns 0, or -1 with a message in err (missing
 * file: -2 and no message, for the optional default path). */
int qfs_conf_load(const char *path, qfs_conf *c, char *err, size_t errlen);
void qfs_conf_free(qfs_conf *c);
/* The one validator of every setting, from the file or the command line:
 * 0, -1 for a bad value, -2 for an unknown key. */
int qfs_conf_set(qfs_conf *c, const char *key, const char *val);
/* What a good value of KEY looks like, for messages. */
const char *qfs_conf_hint(const char *key);

/* The cache holds whole decoded chunks (up to 16 MiB each). */
#define QFS_MIN_CACHE (16ull << 20)

#endif
