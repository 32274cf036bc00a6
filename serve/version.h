/*
 * version.h - one opened container version: the container (with its
 * single-file views built at open), a pool of decode readers, and a
 * reference count held by whoever presents it (the namespace) and by every
 * open file.  A container replaced in the backing directory becomes a new
 * version with a new generation (its own cache key space); the old one
 * lives on until its last reference goes, so one open file never mixes
 * versions.
 */
#ifndef QSV_VERSION_H
#define QSV_VERSION_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "server.h"

struct qsv_version {
	qsv_server *srv;
	char *name;            /* NAME of NAME.qst */
	char *path;            /* backing file */
	struct stat st;        /* identity of this version: dev, ino, size, mtime */
	uint64_t gen;          /* unique per version: cache key space */
	uint64_t id;           /* stable across remounts: from the identity */
	qs_container *c;
	pthread_mutex_t mu;
	qs_reader **idle;      /* reader pool */
	int n_idle;
	int refs;              /* presenter + open files */
	int open_files;
};

/* Open NAME.qst at PATH (identity ST); NULL with *err if it is not a
 * complete, valid container.  The caller holds the one reference. */
qsv_version *qsv_version_open(qsv_server *s, const char *name, const char *path, const struct stat *st,
			      qs_error *err);
void qsv_version_ref(qsv_version *v);
void qsv_version_unref(qsv_version *v);          /* frees at zero */
/* A reader from the pool (or a new one); NULL with *err. */
qs_reader *qsv_version_reader(qsv_version *v, qs_error *err);
void qsv_version_reader_done(qsv_version *v, qs_reader *r);
/* The same file of the same container (device, inode, size, mtime). */
int qsv_same_identity(const struct stat *a, const struct stat *b);

#endif
