/*
 * ns.h - the namespace: inodes for the root, /.qstorefs, and one tree per
 * container version (NAME/, its single-file views, <dtype>/ and int8/).
 *
 * Inode numbers come from the container's identity (device, inode, size,
 * mtime) and the path inside it, so they are stable while a version lives
 * (and across remounts); a replaced container gets new inode numbers, which
 * is what keeps the kernel page cache of the old version from serving the
 * new one while old handles finish.
 *
 * The namespace is an object with its own lock: every call below takes it
 * as needed, and none needs FUSE (the unit tests drive it directly).  A
 * rescan reports the root entries that changed; the caller tells the kernel.
 */
#ifndef QFS_NS_H
#define QFS_NS_H

#include <stdint.h>
#include <sys/stat.h>

#include "../serve/version.h"

#define QFS_INO_ROOT 1
#define QFS_INO_META 2      /* /.qstorefs */
#define QFS_INO_STATS 3     /* /.qstorefs/stats */
#define QFS_INO_CEILING 4   /* /.qstorefs/ceiling (only with -o ceiling=) */

typedef struct qfs_ns qfs_ns;

/* A namespace over the containers of BACKING; CEILING > 0 adds
 * /.qstorefs/ceiling of that size.  NULL when out of memory. */
qfs_ns *qfs_ns_new(qsv_server *srv, qsv_log *log, const char *backing, uint64_t ceiling);
void qfs_ns_free(qfs_ns *ns);

/* Names of root entries that a rescan added, replaced or removed. */
typedef struct qfs_changes {
	char **names;
	size_t n, cap;
} qfs_changes;
void qfs_changes_free(qfs_changes *c);

/* Re-read the backing directory: add, replace, remove containers.  Safe to
 * call from any thread (rescans are serialised).  *changed (may be NULL)
 * gets the root names whose entries the kernel must forget. */
void qfs_ns_rescan(qfs_ns *ns, qfs_changes *changed);

/* What a lookup or getattr answers. */
typedef struct qfs_attr {
	struct stat st;
	double ttl;                /* attribute and entry timeout */
} qfs_attr;

/* NAME in directory PARENT: 0 and *a (and one more lookup reference on the
 * child, for qfs_ns_forget), or -ENOENT / -ENOTDIR. */
int qfs_ns_lookup(qfs_ns *ns, uint64_t parent, const char *name, qfs_attr *a);
int qfs_ns_getattr(qfs_ns *ns, uint64_t ino, qfs_attr *a);
/* The kernel dropped NLOOKUP references to INO. */
void qfs_ns_forget(qfs_ns *ns, uint64_t ino, uint64_t nlookup);
/* 0 if INO is a directory, else -ENOENT / -ENOTDIR. */
int qfs_ns_isdir(qfs_ns *ns, uint64_t ino);

/* Directory entries from offset OFF (0 ".", 1 "..", 2 + i the i-th child):
 * EMIT is called for each until it returns nonzero.  0 or -ENOENT. */
typedef int (*qfs_emit_fn)(void *ctx, const char *name, uint64_t ino, int is_dir, uint64_t next_off);
int qfs_ns_readdir(qfs_ns *ns, uint64_t ino, uint64_t off, qfs_emit_fn emit, void *ctx);

/* The file behind INO: 0 with *v referenced (the caller unrefs), or
 * -ENOENT / -EISDIR.  INO_STATS and INO_CEILING answer 1 (not a model). */
int qfs_ns_open(qfs_ns *ns, uint64_t ino, qsv_version **v, int *view, size_t *file);

/* Who asks: the credentials of a request. */
typedef struct qfs_who {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;       /* supplementary groups */
	int n_groups;
} qfs_who;

/* May WHO read a file with the owner and mode of ST?  (What the kernel's
 * default_permissions check decides for the files of a model.) */
int qfs_may_read(const struct stat *st, const qfs_who *who);

/* {"NAME": {"open_files": N}} for every current model WHO may read (the
 * caller decrefs); its backing container path too for root and for the
 * user running the daemon. */
struct json_t *qfs_ns_models_json(qfs_ns *ns, const qfs_who *who);

#endif
