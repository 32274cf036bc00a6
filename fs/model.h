/*
 * model.h - one opened container version ("model"): the container, its
 * single-file views, a pool of decode readers, and a reference count held
 * by the namespace and by every open handle.  A container replaced in the
 * backing directory becomes a new model; the old one lives on until its
 * last handle closes, so one handle never mixes versions.
 */
#ifndef QFS_MODEL_H
#define QFS_MODEL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "qstore.h"

typedef struct qfs_model {
	char *name;            /* NAME of NAME.qst */
	char *path;            /* backing file */
	struct stat st;        /* identity of this version: dev, ino, size, mtime */
	uint64_t gen;          /* unique per version: cache key space */
	uint64_t id;           /* stable across remounts: from the identity */
	qs_container *c;
	const char *dtype_dir; /* "bf16", "fp16" or "fp32" */
	ssize_t single[2];     /* single-file view per view (-1: none) */
	char single_name[2][32];   /* model-<dtype>.safetensors, model-int8.safetensors */
	pthread_mutex_t mu;
	qs_reader **idle;      /* reader pool */
	int n_idle;
	int refs;              /* namespace + open handles */
	int open_handles;
} qfs_model;

/* Open NAME.qst at PATH (identity ST); NULL with *err if it is not a
 * complete, valid container. */
qfs_model *qfs_model_open(const char *name, const char *path, const struct stat *st, qs_error *err);
void qfs_model_ref(qfs_model *m);
void qfs_model_unref(qfs_model *m);          /* frees at zero */
qs_reader *qfs_model_reader(qfs_model *m);    /* take a reader from the pool */
void qfs_model_reader_done(qfs_model *m, qs_reader *r);

#endif
