/*
 * plan.h - what the packer decides before it encodes a byte: the source
 * files, which tensors are quantised (and why not), the streams and their
 * chunking, and the files + extents of both views.  Generated files of the
 * INT8 view (config.json, index, safetensors headers) are built here too.
 */
#ifndef QS_PLAN_H
#define QS_PLAN_H

#include <sys/types.h>
#include <time.h>

#include "../common/internal.h"
#include "../common/safetensors.h"

enum { SRC_FILE = 0, SRC_MEM = 1 };

typedef struct qs_srcfile {
	char *rel;                 /* path inside SRC ('/'-separated) */
	char *abs;
	uint64_t size;             /* at open; with mtime, checked again before commit */
	struct timespec mtime;
	dev_t dev;                 /* identity, for files reopened on demand */
	ino_t ino;
	int is_st;
	qs_st_file st;
	char **names;              /* st's tensor names sorted, built on demand */
	int fd;                    /* safetensors files; others are opened when read
				    * (qs_plan_open), so 20,000 small files need no
				    * 20,000 descriptors */
} qs_srcfile;

typedef struct qs_stream_src {
	int kind;                  /* SRC_FILE or SRC_MEM */
	size_t file;               /* SRC_FILE: source file index */
	uint64_t off;              /* SRC_FILE: absolute offset of the first byte */
	uint8_t *mem;              /* SRC_MEM: owned bytes */
	int64_t tensor;            /* tensor index, for the floor and stored bytes */
	int64_t hash_file;         /* high view file whose SHA-256 these bytes feed */
	const uint32_t *scales;    /* QUANT: row scales (bits) */
	int zlevel;                /* BLOB: zstd level */
} qs_stream_src;

typedef struct qs_plan {
	qs_index ix;               /* chunks are filled in by the packer */
	qs_stream_src *src;        /* one per stream */
	size_t cap_streams, cap_tensors, cap_extents;
	qs_srcfile *files;
	size_t n_files;
	uint32_t **scale_bufs;     /* owned scale arrays */
	size_t n_scale_bufs;
	uint64_t source_bytes;
	size_t chunk_bytes;
	char *root;                /* links may only lead inside it: SRC's directory, or
				    * REPO for an HF cache snapshot REPO/snapshots/REV */
} qs_plan;

int qs_plan_build(qs_plan *p, const char *src, size_t chunk_bytes, qs_error *err);
/* 0 if no source file changed size or mtime since it was opened. */
int qs_plan_unchanged(const qs_plan *p, qs_error *err);
/* A descriptor for reading F: its own, or a new one (the same file as at
 * the scan, still inside the root) that qs_plan_done closes.  -1 on error. */
int qs_plan_open(const qs_plan *p, const qs_srcfile *f, qs_error *err);
void qs_plan_done(const qs_srcfile *f, int fd);
void qs_plan_free(qs_plan *p);

#endif
