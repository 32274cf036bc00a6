/*
 * qstore.h - the one public door to the qstore container library (libqstore).
 *
 * A container (NAME.qst) holds one model in two precisions: the INT8 codes of
 * every Linear weight plus the residual that rebuilds the original high
 * precision bytes exactly, and every other file and tensor once.  Each file of
 * either view can be read at any (offset, length) by decoding only the chunks
 * that hold it.  The on-disk format is specified in codec/FORMAT.md.
 *
 * Thread safety: a qs_container is immutable after qs_open() and may be shared
 * by any number of threads; each thread that reads needs its own qs_reader
 * (decode scratch).  No function keeps global state.
 */
#ifndef QSTORE_H
#define QSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QSTORE_VERSION_STRING "0.1.0"

/* Every call that can fail fills one of these with a one-line message that
 * names the file (and tensor, chunk) concerned. */
typedef struct qs_error {
	int code;       /* errno-style: EIO for damaged data, EINVAL for bad input, ... */
	char msg[1024];
} qs_error;

/* ---- packing ----------------------------------------------------------- */

typedef struct qs_pack_options {
	int threads;          /* worker threads; <= 0 means one per online CPU */
	int progress;         /* print bytes, rate and ETA to stderr */
	size_t chunk_bytes;   /* decoded bytes per chunk; 0 = default (1 MiB) */
	volatile int *cancel; /* if set and it becomes non-zero, the pack stops
	                         and removes its temporary file (for signals) */
} qs_pack_options;

typedef struct qs_pack_stats {
	uint64_t source_bytes;      /* bytes of every source file */
	uint64_t container_bytes;   /* size of the written container */
	double seconds;             /* wall time of the pack */
} qs_pack_stats;

/* Pack SRC (a model directory or one .safetensors file) into OUT.  The output
 * is written to a temporary file beside OUT, fsynced and renamed; on any
 * error nothing is left behind.  Returns 0 or -1 with *err filled. */
int qs_pack(const char *src, const char *out, const qs_pack_options *opt,
	    qs_pack_stats *stats, qs_error *err);

/* ---- reading ----------------------------------------------------------- */

typedef struct qs_container qs_container;
typedef struct qs_reader qs_reader;

typedef enum qs_view {
	QS_VIEW_HIGH = 0,   /* the source files, byte for byte */
	QS_VIEW_INT8 = 1,   /* the compressed-tensors INT8 model directory */
} qs_view;

typedef struct qs_file_info {
	const char *path;         /* relative path, '/'-separated, validated */
	uint64_t size;
	uint8_t sha256[32];       /* recorded at pack time */
	int has_sha256;           /* 0 for files built at open (qs_add_merged) */
} qs_file_info;

typedef struct qs_tensor_info {
	const char *name;
	const char *file;         /* source file (high view path) */
	const char *dtype;        /* safetensors dtype string */
	int ndim;
	const uint64_t *shape;
	uint64_t nbytes;          /* bytes in the high view */
	int quantized;
	const char *reason;       /* why it was (not) quantized */
	uint64_t stored_bytes;    /* compressed payload of its chunks (+ scales) */
	double floor_bytes;       /* n*H0/8 for 16-bit floats, raw size otherwise */
} qs_tensor_info;

typedef struct qs_summary {
	const char *source_dtype;      /* dominant float dtype of the source: BF16, F16, F32 */
	uint64_t container_bytes;
	uint64_t high_bytes;           /* sum of high view file sizes */
	uint64_t int8_bytes;           /* sum of int8 view file sizes */
	double floor_bytes;            /* entropy floor, see FORMAT.md */
	uint64_t n_chunks;
	uint64_t n_tensors;
} qs_summary;

/* Open and validate a container: magic, version, trailer, index hash and every
 * table bound.  Nothing is decoded.  Returns NULL with *err on failure. */
qs_container *qs_open(const char *path, qs_error *err);
void qs_close(qs_container *c);

const char *qs_container_path(const qs_container *c);
void qs_container_summary(const qs_container *c, qs_summary *out);
size_t qs_file_count(const qs_container *c, qs_view view);
int qs_file_get(const qs_container *c, qs_view view, size_t i, qs_file_info *out);
/* Index of the file with this path in the view, or -1. */
ssize_t qs_file_find(const qs_container *c, qs_view view, const char *path);
size_t qs_tensor_count(const qs_container *c);
int qs_tensor_get(const qs_container *c, size_t i, qs_tensor_info *out);

qs_reader *qs_reader_new(qs_container *c);
void qs_reader_free(qs_reader *r);

/* Read LEN bytes at OFF of file FILE of VIEW into BUF, decoding only the
 * chunks that overlap the range and verifying each chunk's checksum.
 * Returns the number of bytes read (short only at end of file) or -1 with
 * *err naming container, file, tensor and chunk. */
ssize_t qs_read(qs_reader *r, qs_view view, size_t file, uint64_t off,
		void *buf, size_t len, qs_error *err);

/* Decode everything, checking every chunk checksum and every file SHA-256.
 * Writes one line per problem to REPORT (may be NULL) and returns the number
 * of problems found (0 = intact) or -1 on an error that stops the check. */
typedef void (*qs_report_fn)(void *ctx, const char *line);
long qs_verify(qs_container *c, qs_report_fn report, void *ctx, qs_error *err);

/* Write every file of VIEW into the new directory DIR (it must not exist; the
 * files are written into a temporary sibling that is renamed at the end). */
int qs_unpack(qs_container *c, qs_view view, const char *dir, qs_error *err);

/* ---- chunk level: for a daemon that caches decoded chunks itself ------- */

/* One piece of a file read: LEN bytes at CHUNK_OFF of the decoded chunk
 * (stream, face, chunk), landing at FILE_OFF of the file. */
typedef struct qs_piece {
	uint32_t stream, face;
	uint64_t chunk;
	uint64_t chunk_off, len, file_off;
} qs_piece;

/* Map [off, off + len) of a file (clamped to its size) onto at most MAX
 * pieces, in file order; returns how many were written (fewer than needed
 * when MAX runs out: continue from the last piece's end). */
size_t qs_map(const qs_container *c, qs_view view, size_t file, uint64_t off, uint64_t len,
	      qs_piece *out, size_t max);
/* A key unique to (stream, face, chunk) within this container. */
uint64_t qs_chunk_key(const qs_container *c, uint32_t stream, uint32_t face, uint64_t chunk);
uint64_t qs_chunk_decoded_size(const qs_container *c, uint32_t stream, uint32_t face, uint64_t chunk);
uint64_t qs_max_chunk_bytes(const qs_container *c);
/* The container bytes [*off, *off + *len) a decode of this chunk face needs
 * (*len = 0: nothing to read, the data is in memory). */
void qs_chunk_span(const qs_container *c, uint32_t stream, uint32_t face, uint64_t chunk,
		   uint64_t *off, size_t *len);
/* Decode a chunk face from the bytes of its span (read by the caller) into
 * OUT (qs_chunk_decoded_size bytes), verifying its checksum.  FILE names the
 * file for the error message.  Returns the decoded size or -1. */
ssize_t qs_decode_span(qs_reader *r, uint32_t stream, uint32_t face, uint64_t chunk, const void *span,
		       void *out, const char *file, qs_error *err);
/* The container's file descriptor (read-only), for callers that read spans
 * themselves (io_uring).  Owned by the container. */
int qs_container_fd(const qs_container *c);
/* Name of the tensor (or file) a stream holds, for messages. */
const char *qs_stream_label(const qs_container *c, uint32_t stream);

/* Add to VIEW a single safetensors file NAME holding every tensor of the
 * view's top-level weight files (shards), built in memory from their
 * headers.  With one weight file, returns its index (it is its own
 * single-file view) and adds nothing; with none, -1.  Call before creating
 * readers.  Returns the file index or -1 with *err. */
ssize_t qs_add_merged(qs_container *c, qs_view view, const char *name, qs_error *err);

/* The manifest of the container as JSON text (for `qstore info --json`);
 * the caller frees it with free(). */
char *qs_info_json(const qs_container *c, qs_error *err);

#ifdef __cplusplus
}
#endif
#endif /* QSTORE_H */
