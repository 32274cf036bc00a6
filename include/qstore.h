/*
 * qstore.h - the public interface of the qstore container library (libqstore).
 *
 * A container (NAME.qst) holds one model in two precisions: the INT8 codes of
 * every Linear weight plus the residual that rebuilds the original high
 * precision bytes exactly, and every other file and tensor once.  Each file of
 * either view can be read at any (offset, length) by decoding only the chunks
 * that hold it.  The on-disk format is specified in codec/FORMAT.md.
 *
 * Conventions, for every function below:
 *  - Functions that can fail take a qs_error * (it may be NULL) and fill it
 *    with an errno-style code and one line naming the file concerned (and the
 *    tensor and chunk, for damaged data).  Integer results: -1 on error.
 *  - "None" is never an error: a lookup that finds nothing returns -1 and
 *    leaves *err untouched (code 0) where a failure would set it.
 *  - Strings and arrays handed out through qs_file_info, qs_tensor_info,
 *    qs_summary and the name functions belong to the container and stay
 *    valid until qs_close().
 *
 * Thread safety: a qs_container is immutable after qs_open() and may be shared
 * by any number of threads; each thread that reads needs its own qs_reader
 * (decode scratch).  The library keeps no global mutable state.
 *
 * The chunk-level interface a daemon with its own cache needs (map a range
 * to chunks, read and decode one chunk) is in qstore_chunk.h.
 */
#ifndef QSTORE_H
#define QSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every symbol the library exports carries QS_API; everything else is built
 * with -fvisibility=hidden and localised in libqstore.a. */
#if defined(__GNUC__)
#define QS_API __attribute__((visibility("default")))
#else
#define QS_API
#endif

#define QSTORE_VERSION_STRING "0.5.1"
/* the container format version this library writes (codec/FORMAT.md); it
 * also reads QSTORE_CONTAINER_FORMAT_OLDEST and every version in between */
#define QSTORE_CONTAINER_FORMAT 4
#define QSTORE_CONTAINER_FORMAT_OLDEST 2

/* The decoder kernel set this process uses ("scalar", "avx512"): the best
 * the CPU runs, or the one the environment variable QSTORE_SIMD names. */
QS_API const char *qs_decoder_kernels(void);

/* Every call that can fail fills one of these with a one-line message that
 * names the file (and tensor, chunk) concerned. */
typedef struct qs_error {
	int code;       /* errno-style: EIO for damaged data, EINVAL for bad input, ... */
	char msg[1024];
} qs_error;

/* Progress of a long operation (pack, unpack, verify): DONE of TOTAL bytes
 * (the source files for pack, the view's files otherwise).  Called from the
 * calling thread about every 0.1 s, and once more at the end with done ==
 * total; the front end decides what to print. */
typedef void (*qs_progress_fn)(void *ctx, uint64_t done, uint64_t total);
typedef struct qs_progress {
	qs_progress_fn fn;    /* NULL: no progress */
	void *ctx;
} qs_progress;

/* ---- packing ----------------------------------------------------------- */

/* How a quantised weight's INT8 codes are kept (FORMAT.md section 3).  Both
 * ways rebuild both views exactly; they differ in size and in which view
 * decodes faster. */
enum qs_int8_codes {
	QS_CODES_AUTO = 0,     /* per chunk: derived, unless stored is more
	                          than 1% smaller (ternary, sparse rows) */
	QS_CODES_STORED = 1,   /* codes + residual: the INT8 view decodes fastest */
	QS_CODES_DERIVED = 2,  /* the floats alone, codes computed from them:
	                          the high view decodes fastest */
};

typedef struct qs_pack_options {
	int threads;          /* worker threads; <= 0 means one per online CPU */
	qs_progress progress;
	int force;            /* replace an existing OUT (else EEXIST); a result
	                         identical to it leaves it untouched */
	size_t chunk_bytes;   /* decoded bytes per chunk; 0 = default (1 MiB) */
	int int8_codes;       /* enum qs_int8_codes; 0 = QS_CODES_AUTO */
	volatile int *cancel; /* if set and it becomes non-zero, the pack stops
	                         and removes its temporary file (for signals) */
} qs_pack_options;

typedef struct qs_pack_stats {
	uint64_t source_bytes;      /* bytes of every source file */
	uint64_t container_bytes;   /* size of the written container */
	double seconds;             /* wall time of the pack */
	int unchanged;              /* OUT existed with these very bytes: left as it was */
} qs_pack_stats;

/* Pack SRC (a model directory or one .safetensors file) into OUT.  OPT may be
 * NULL (defaults), STATS may be NULL.  The output is written to a temporary
 * file beside OUT, fsynced and renamed; on any error nothing is left behind.
 * Returns 0 or -1 with *err filled. */
QS_API int qs_pack(const char *src, const char *out, const qs_pack_options *opt,
		   qs_pack_stats *stats, qs_error *err);

/* ---- opening ------------------------------------------------------------ */

typedef struct qs_container qs_container;
typedef struct qs_reader qs_reader;

typedef enum qs_view {
	QS_VIEW_HIGH = 0,   /* the source files, byte for byte */
	QS_VIEW_INT8 = 1,   /* the compressed-tensors INT8 model directory */
	/* Lower precisions, generated at open from the INT8 codes and row
	 * scales alone (nothing is stored for them; FORMAT.md section 7): the
	 * view of N-bit codes is number N.  Each exists only when the
	 * container was opened with QS_OPEN_INT(N); INT4 is W4A16 with groups
	 * of 128 along the input dimension, the others are per channel. */
	QS_VIEW_INT2 = 2, QS_VIEW_INT3 = 3, QS_VIEW_INT4 = 4,
	QS_VIEW_INT5 = 5, QS_VIEW_INT6 = 6, QS_VIEW_INT7 = 7,
} qs_view;
#define QS_N_VIEWS 8
/* the group size of the INT4 view's scales (along a row) */
#define QS_INT4_GROUP 128

enum qs_open_flags {
	/* Also build each view's single-file view: one safetensors file holding
	 * every tensor of the view's shards, generated from their headers (see
	 * qs_single_file).  Costs one read of each shard header at open. */
	QS_OPEN_SINGLE_FILE = 1,
};
/* Also present the N-bit view (2 <= N <= 7).  Costs one read of each INT8
 * shard header, config.json and shard index at open. */
#define QS_OPEN_INT(n) (1u << (8 + (n)))
#define QS_OPEN_LOW_VIEWS (0x3fu << 10)   /* every QS_OPEN_INT(n) */

/* Open and validate a container: magic, version, trailer, index hash and every
 * table bound.  No tensor data is decoded.  Returns NULL with *err on
 * failure.  qs_open(p, e) is qs_open_ex(p, 0, e). */
QS_API qs_container *qs_open(const char *path, qs_error *err);
QS_API qs_container *qs_open_ex(const char *path, unsigned flags, qs_error *err);
/* Free the container (NULL is fine).  Every reader of it must be freed first. */
QS_API void qs_close(qs_container *c);

/* ---- what a container holds -------------------------------------------- */

typedef struct qs_file_info {
	const char *path;         /* relative path, '/'-separated, validated */
	uint64_t size;
	uint8_t sha256[32];       /* recorded at pack time */
	int has_sha256;           /* 0 for files generated at open (single-file and lower views) */
	int merged;               /* the single-file view generated from shards: not in the view's directory */
} qs_file_info;

typedef struct qs_tensor_info {
	const char *name;
	const char *file;         /* source file (high view path) */
	const char *dtype;        /* safetensors dtype string */
	int ndim;
	const uint64_t *shape;    /* ndim entries */
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
	uint64_t low_bytes[QS_N_VIEWS];  /* [N]: sum of the intN view's file sizes (views opened) */
	double floor_bytes;            /* entropy floor, see FORMAT.md */
	uint64_t n_chunks;
	uint64_t n_tensors;
	uint64_t quant_chunks;         /* chunks of quantised weights ... */
	uint64_t derived_chunks;       /* ... of which the INT8 codes are derived from the floats */
	uint64_t tuple_chunks;         /* ... of which the stored codes are coded as tuples (QTUP; read
					* from each chunk's first byte: one pread per stored chunk) */
} qs_summary;

/* The path the container was opened with. */
QS_API const char *qs_container_path(const qs_container *c);
/* Totals of the container (sizes, floor, counts). */
QS_API void qs_container_summary(const qs_container *c, qs_summary *out);
/* Number of files in VIEW (0 for a bad view). */
QS_API size_t qs_file_count(const qs_container *c, qs_view view);
/* File I of VIEW into *out; 0, or -1 if there is no such file. */
QS_API int qs_file_get(const qs_container *c, qs_view view, size_t i, qs_file_info *out);
/* Index of the file with this path in the view, or -1 if there is none. */
QS_API ssize_t qs_file_find(const qs_container *c, qs_view view, const char *path);
/* Number of tensors of the source model (both views describe the same ones). */
QS_API size_t qs_tensor_count(const qs_container *c);
/* Tensor I into *out; 0, or -1 if there is no such tensor. */
QS_API int qs_tensor_get(const qs_container *c, size_t i, qs_tensor_info *out);

/* The directory name a view is presented under: "bf16", "fp16" or "fp32"
 * (from the source dtype) for the high view, "int8" for the INT8 view,
 * "intN" for a lower one; NULL for a bad view or one not opened. */
QS_API const char *qs_view_dir(const qs_container *c, qs_view view);
/* Why the lower view V, asked for at open, is absent (its INT8 view could
 * not give it: the message names the container and the file), or NULL. */
QS_API const char *qs_view_missing(const qs_container *c, qs_view v);
/* A view's name in options and messages: "high", "int8", "int2".."int7";
 * NULL for a bad view. */
QS_API const char *qs_view_name(qs_view view);
/* The view a name means (as qs_view_name gives them), or -1. */
QS_API int qs_view_parse(const char *name);
/* The name of a view's single-file view: "model-<qs_view_dir>.safetensors". */
QS_API const char *qs_single_file_name(const qs_container *c, qs_view view);
/* Index of the view's single safetensors file: the one weight file of an
 * unsharded model, or (opened with QS_OPEN_SINGLE_FILE) the file generated
 * from the shards.  -1 when there is none; then *why (if non-NULL) is NULL
 * when the view simply has no weight file, or says why the shard headers
 * could not be merged. */
QS_API ssize_t qs_single_file(const qs_container *c, qs_view view, const char **why);

/* ---- reading ----------------------------------------------------------- */

/* A reader: decode scratch for one thread (about 3 x the largest chunk).
 * NULL with *err when out of memory. */
QS_API qs_reader *qs_reader_new(qs_container *c, qs_error *err);
QS_API void qs_reader_free(qs_reader *r);

/* Read LEN bytes at OFF of file FILE of VIEW into BUF, decoding only the
 * chunks that overlap the range and verifying each chunk's checksum.
 * Returns the number of bytes read (short only at end of file) or -1 with
 * *err naming container, file, tensor and chunk. */
QS_API ssize_t qs_read(qs_reader *r, qs_view view, size_t file, uint64_t off,
		       void *buf, size_t len, qs_error *err);

/* Decode everything, checking every chunk checksum and every file SHA-256.
 * Writes one line per file to REPORT (may be NULL) and returns the number of
 * problems found (0 = intact) or -1 on an error that stops the check. */
typedef void (*qs_report_fn)(void *ctx, const char *line);
QS_API long qs_verify(qs_container *c, qs_report_fn report, void *ctx, const qs_progress *progress,
		      qs_error *err);

/* Write every file of VIEW into the new directory DIR (it must not exist; the
 * files are written into a temporary sibling that is renamed at the end, and
 * removed on any error).  Returns 0 or -1 with *err. */
QS_API int qs_unpack(qs_container *c, qs_view view, const char *dir, const qs_progress *progress,
		     qs_error *err);

/* The manifest of the container as JSON text (for `qstore info --json`);
 * the caller frees it with free().  NULL with *err when out of memory. */
QS_API char *qs_info_json(const qs_container *c, qs_error *err);

/* ---- small utilities shared by the tools ------------------------------- */

/* A list of lower views, "int4,int2" or "int4:int2" (intN, 2 <= N <= 7,
 * separated by ',' or ':', which a FUSE -o option needs), "all" or "none", into the QS_OPEN_INT flags *out.  0, or -1 for anything
 * else (an empty or repeated entry, int8, int1...). */
QS_API int qs_parse_low_views(const char *list, unsigned *out);
/* "123", "4K", "64M", "4G", "1T" (powers of 1024; lower case accepted) into
 * *out.  0, or -1 for anything else, including a value above 2^64 - 1. */
QS_API int qs_parse_bytes(const char *s, uint64_t *out);
/* Make room for NEED elements of ELEM bytes in the array *ARR of capacity
 * *CAP (grown geometrically; the new elements are zeroed): 0, or -1 with
 * nothing changed when out of memory or when the byte count would overflow. */
QS_API int qs_grow(void **arr, size_t *cap, size_t need, size_t elem);
/* Is the canonical path A the canonical directory B or below it?  (Both as
 * realpath(3) returns them; "/a/bc" is not below "/a/b".) */
/* Raise the soft limit on open files to the hard limit: a model of 20,000
 * files is packed with one descriptor each, and a daemon keeps one per
 * container.  Returns the new soft limit. */
QS_API unsigned long qs_raise_fd_limit(void);
/* SRC with every control character (and '\\') written as \xNN, into DST of
 * CAP bytes (4 * strlen(SRC) + 1 always suffice; cut short otherwise): for
 * names from files shown on a terminal or in a log. */
QS_API void qs_escape(const char *src, char *dst, size_t cap);
QS_API int qs_within(const char *a, const char *b);
/* N bytes as 2N lower-case hex digits plus a NUL into OUT. */
QS_API void qs_hex(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif /* QSTORE_H */
