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
	/* per view: directory name (NULL: view not opened), single-file view
	 * (index or -1, and why not) */
	const char *dir[QS_N_VIEWS];
	char single_name[QS_N_VIEWS][48];
	ssize_t single[QS_N_VIEWS];
	char *single_why[QS_N_VIEWS];
	char *low_why[QS_N_VIEWS];   /* a lower view asked for but absent: why */
	/* lowface.c: with the INT4 view open, the group maxima of each chunk
	 * (by global chunk number) once a decode has worked them out, so that
	 * its scale face needs no codes; bounded by QS_GMAX_BUDGET in all.  The
	 * array itself comes with the first maxima kept. */
	struct qs_gmax *_Atomic *_Atomic gmax;
	_Atomic uint64_t gmax_bytes;
};

/* merged.c: the header of safetensors file FI of view V, parsed into *ST
 * (its length, 8 + N, into *HLEN), taking 8 + N from *BUDGET: open decodes
 * such headers, and what a container may make it decode is bounded by its
 * own size (QS_OPEN_READ_BUDGET; real headers are well under 1% of it). */
#define QS_OPEN_READ_BUDGET(ix) ((16ull << 20) + 8 * (ix)->container_bytes)
struct qs_st_file;
int qs_read_st_header(qs_container *c, qs_reader *r, int v, size_t fi, struct qs_st_file *st, uint64_t *hlen,
		      uint64_t *budget, qs_error *err);

/* lowview.c: generate the lower views FLAGS asks for (QS_OPEN_INT) from the
 * INT8 view.  Fails only when out of memory or on a damaged INT8 view. */
int qs_low_views_init(qs_container *c, unsigned flags, qs_error *err);
void qs_low_views_free(qs_container *c);

/* reader.c, for lowface.c: the INT8 codes of piece P's chunk (any face of a
 * QUANT stream; SPAN holds what its Q face needs), given to EACH in order:
 * codes derived from floats (QDRV) in runs of whole rows, about QS_CODE_RUN
 * codes (or one row) each, stored codes or a chunk that starts inside a row
 * as one run.  EACH returns 0, or -1 to stop.  0 when
 * every run was given and the codes were checked; -1 otherwise, and then
 * what EACH wrote is not to be served.  And the row scales (bits) of
 * elements [e0, e0 + ne) of W. */
struct qs_reader;
#define QS_CODE_RUN 16384
typedef int (*qs_codes_fn)(void *ctx, const int8_t *q, size_t first, size_t n);
int qs_reader_each_codes(qs_reader *r, const qs_piece *p, const uint8_t *span, qs_codes_fn each, void *ctx,
			 const char *file, qs_error *err);
const uint32_t *qs_reader_row_scales(qs_reader *r, const qs_stream *w, uint64_t e0, size_t ne, const char *file,
				     qs_error *err);
/* A buffer of N bytes kept by the reader for lowface.c (grown as needed). */
uint8_t *qs_reader_lowbuf(qs_reader *r, size_t n, qs_error *err);
qs_container *qs_reader_container(qs_reader *r);
const qs_dec_kernels *qs_reader_kernels(qs_reader *r);

/* lowface.c: decode a lower face (PACK or SCALE of N bits) of a QUANT chunk. */
ssize_t qs_decode_low(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, uint8_t *out,
		      const char *file, qs_error *err);
/* map.c: P's span (span_off, span_len) for FACE of chunk K of S. */
void qs_span_of(const qs_container *c, const qs_stream *s, uint32_t face, uint64_t k, qs_piece *p);

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
