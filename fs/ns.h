/*
 * ns.h - the namespace: inodes for the root, /.qstorefs, and one tree per
 * container version (NAME/, its single-file views, <dtype>/ and int8/).
 *
 * Inode numbers come from the container's identity (device, inode, size,
 * mtime) and the path inside it, so they are stable while a version lives
 * (and across remounts); a replaced container gets new inode numbers, which
 * is what keeps the kernel page cache of the old version from serving the
 * new one while old handles finish.
 */
#ifndef QFS_NS_H
#define QFS_NS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include "model.h"

#define QFS_INO_ROOT 1
#define QFS_INO_META 2      /* /.qstorefs */
#define QFS_INO_STATS 3     /* /.qstorefs/stats */
#define QFS_INO_CEILING 4   /* /.qstorefs/ceiling (only with -o ceiling=) */

typedef struct qfs_node {
	uint64_t ino;
	char *name;
	int is_dir;
	qfs_model *model;          /* NULL for root and /.qstorefs; else a reference */
	int view;                  /* files: view and index in the container */
	ssize_t file;
	uint64_t size;
	uint64_t *kids;            /* dirs: children inodes, sorted by name */
	size_t n_kids, cap_kids;
	atomic_uint_fast64_t nlookup;
	int live;                  /* reachable from the root */
	struct qfs_node *hnext;
} qfs_node;

extern pthread_rwlock_t qfs_ns_lock;

int qfs_ns_init(void);
void qfs_ns_destroy(void);
/* Re-read the backing directory: add, replace, remove containers.  Safe to
 * call from any thread; tells the kernel what changed once mounted. */
void qfs_ns_rescan(void);
/* Under qfs_ns_lock (read): the node, or NULL. */
qfs_node *qfs_ns_node(uint64_t ino);
qfs_node *qfs_ns_child(const qfs_node *dir, const char *name);
void qfs_ns_fill_attr(const qfs_node *n, struct stat *st);
/* The kernel dropped NLOOKUP references to INO. */
void qfs_ns_forget(uint64_t ino, uint64_t nlookup);
/* Write "name": open handles for each current model into a JSON object. */
struct json_t *qfs_ns_models_json(void);

#endif
