/*
 * container.h - the opened container.  Private to decompress/ (and to the
 * pack orchestrator above both halves, which reads its own output back).
 */
#ifndef QS_CONTAINER_H
#define QS_CONTAINER_H

#include <pthread.h>

#include "../common/internal.h"
#include "decode.h"

struct qs_container {
	char *path;
	int fd;
	int owns_index;        /* 0 when wrapping the packer's index */
	qs_index *ix;
	qs_index own;
	const qs_dec_kernels *kernels;
	/* per view: directory name, single-file view (index or -1, and why not) */
	const char *dir[2];
	char single_name[2][48];
	ssize_t single[2];
	char *single_why[2];
};

/* Wrap an index that is already in memory (the packer's): the container
 * neither frees the index nor closes FD. */
qs_container *qs_container_wrap(qs_index *ix, int fd, const char *path, qs_error *err);

/* merged.c: set up each view's single-file view (QS_OPEN_SINGLE_FILE builds
 * one from the shard headers).  Fails only when out of memory. */
int qs_single_files_init(qs_container *c, int build, qs_error *err);

/* verify.c: stream every byte of file I of V through the SHA-256 H and SINK
 * (may be NULL; nonzero = write error), QS_IO_BLOCK bytes at a time through
 * BUF, counting them on TK (may be NULL); the digest into GOT, compared with
 * the recorded one.  0, -1 on an error (err set), 1 on a hash mismatch.  H
 * is clean again afterwards. */
#define QS_IO_BLOCK (4u << 20)
struct qs_sha256;
int qs_stream_file(qs_container *c, qs_reader *r, qs_view v, size_t i, uint8_t *buf, struct qs_sha256 *h,
		   int (*sink)(void *, const uint8_t *, size_t), void *sctx, qs_ticker *tk, uint8_t got[32],
		   qs_error *err);
/* The bytes of every file of views [v0, v1], for progress totals. */
uint64_t qs_views_bytes(const qs_container *c, int v0, int v1);

#endif
