/*
 * qstore_chunk.h - the chunk-level interface of libqstore, for a reader that
 * caches decoded chunks itself (the qstorefs serving layer).
 *
 * qs_read() is map + read + decode with a one-chunk memo.  A cache owner does
 * the same three steps itself:
 *
 *   n = qs_map(c, view, file, off, len, pieces, max);   // which chunks
 *   for each piece p:
 *       look up p.key in the cache; if absent:
 *           read p.span_len bytes at p.span_off of qs_container_fd(c)
 *           (or qs_read_span); qs_decode_piece(r, &p, span, out, ...)
 *       copy p.len bytes at p.chunk_off of the decoded chunk to p.file_off
 *
 * Keys are dense: every (stream, face, chunk) of a container, stored or
 * generated at open, has its own key in [0, qs_key_count(c)), so a cache may
 * index an array with them and two different chunks never share one.
 * Everything here has the conventions of qstore.h.
 */
#ifndef QSTORE_CHUNK_H
#define QSTORE_CHUNK_H

#include "qstore.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One piece of a file read: LEN bytes at CHUNK_OFF of one decoded chunk,
 * landing at FILE_OFF of the file. */
typedef struct qs_piece {
	uint64_t key;             /* dense chunk key, see above */
	uint64_t decoded_size;    /* bytes of the whole decoded chunk */
	uint64_t span_off;        /* container bytes a decode needs ... */
	size_t span_len;          /* ... (0: generated at open, nothing to read) */
	uint64_t chunk_off, len, file_off;
	uint32_t stream, face;    /* identity, for qs_decode_piece and messages */
	uint64_t chunk;
} qs_piece;

/* Map [off, off + len) of a file (clamped to its size) onto at most MAX
 * pieces, in file order; returns how many were written (fewer than needed
 * when MAX runs out: continue from the last piece's end; 0 past the end of
 * the file or for a bad view or file). */
QS_API size_t qs_map(const qs_container *c, qs_view view, size_t file, uint64_t off, uint64_t len,
		     qs_piece *out, size_t max);
/* Number of distinct chunk keys. */
QS_API uint64_t qs_key_count(const qs_container *c);
/* The largest decoded_size of any piece. */
QS_API uint64_t qs_max_chunk_bytes(const qs_container *c);
/* The container's file descriptor (read-only, owned by the container), for
 * callers that read spans themselves (io_uring). */
QS_API int qs_container_fd(const qs_container *c);
/* Read a piece's span into SPAN (span_len bytes) with pread.  0, or -1 with
 * *err naming container, file (FILE, for the message), tensor and chunk. */
QS_API int qs_read_span(const qs_container *c, const qs_piece *p, void *span, const char *file, qs_error *err);
/* Decode the chunk of piece P from the bytes of its span into OUT
 * (decoded_size bytes), verifying its checksum.  FILE names the file for the
 * message.  Returns decoded_size, or -1 with *err. */
QS_API ssize_t qs_decode_piece(qs_reader *r, const qs_piece *p, const void *span, void *out, const char *file,
			       qs_error *err);
/* Whether P's decode is cheaper after another piece's: a lower view's INT4
 * scales come from group maxima the decode of the chunk's packed codes
 * keeps, and without them decode the codes a second time.  1 and *KEY (that
 * piece's key), or 0.  A cache owner that finds another thread loading KEY
 * may wait for it before decoding P, when it holds nothing it must still
 * load. */
QS_API int qs_piece_after(const qs_container *c, const qs_piece *p, uint64_t *key);
/* Fill *err with code CODE and "container: file 'FILE': tensor 'T': chunk K:
 * WHAT" for a problem with piece P found by the caller (a failed backing
 * read); returns -1.  The one format of every chunk message. */
QS_API int qs_piece_error(const qs_container *c, const qs_piece *p, const char *file, int code, const char *what,
			  qs_error *err);

#ifdef __cplusplus
}
#endif
#endif /* QSTORE_CHUNK_H */
