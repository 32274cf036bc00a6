/*
 * options.h - the daemon's settings: the command line (-o key=value, the
 * positional BACKING_DIR MOUNTPOINT) over the configuration file over the
 * defaults, every value through the one validator (config.c).
 */
#ifndef QFS_OPTIONS_H
#define QFS_OPTIONS_H

#include <stdint.h>

struct fuse_args;

typedef struct qfs_options {
	char *backing;             /* BACKING_DIR (absolute, resolved) */
	char *mountpoint;
	uint64_t cache_size;       /* -o cache_size= (bytes) */
	uint64_t prefetch_max;     /* -o prefetch_max= (bytes) */
	unsigned workers;          /* -o workers=: prefetch threads */
	unsigned readahead_kb;     /* -o readahead_kb=: kernel readahead of the mount */
	unsigned lower_views;      /* -o lower_views=: QS_OPEN_INT flags (default int4) */
	unsigned max_threads;      /* FUSE request threads */
	uint64_t ceiling;          /* -o ceiling=: size of /.qstorefs/ceiling, a file of
	                              zeros served from memory (measures FUSE alone) */
	int log_level;
	int foreground;
	char *conf_path;           /* the file read (re-read on SIGHUP), or NULL */
} qfs_options;

/* Fill *o from ARGS, leaving FUSE's own options in ARGS.  Returns -1 to go
 * on, or the exit status (0 after --help/--version, 2 for bad usage, 1 for
 * a backing directory that is not one), having said why on stderr. */
int qfs_options_parse(struct fuse_args *args, qfs_options *o);
void qfs_options_free(qfs_options *o);

#endif
