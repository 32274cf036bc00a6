/*
 * internal.h - types shared by the packer and the reader: the in-memory index
 * (what FORMAT.md calls the manifest, the chunk table and the extent table),
 * error helpers and little-endian access.  Nothing here is public API.
 */
#ifndef QS_INTERNAL_H
#define QS_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "qstore.h"
#include "qstore_chunk.h"
#include "floatfmt.h"

#define QS_MAX_DIMS 16
/* Hard upper bound on one chunk's decoded size: readers size their scratch
 * from it, so a hostile index cannot make them allocate more. */
#define QS_MAX_CHUNK_BYTES (16u << 20)
#define QS_DEFAULT_CHUNK_BYTES (1u << 20)

enum qs_stream_kind {
	QS_STREAM_BLOB = 0,   /* opaque bytes: headers, config, tokenizer, int tensors */
	QS_STREAM_FLOAT = 1,  /* a float tensor stored once, exponent-modelled */
	QS_STREAM_QUANT = 2,  /* INT8 codes + residual rebuilding the float bytes */
	QS_STREAM_MEM = 3,    /* in memory only, never stored: a generated header
	                         (the merged single-file views, merged.c) */
};

enum qs_face {
	QS_FACE_HIGH = 0,     /* the original bytes of the stream */
	QS_FACE_Q = 1,        /* QUANT only: one signed INT8 code per element */
	/* QUANT only, never stored (the lower views, lowview.c; FORMAT.md
	 * section 7): QS_FACE_PACK(n) is a chunk's rows of n-bit codes packed
	 * as compressed-tensors packs them, QS_FACE_SCALE(n) their scales.
	 * Both need chunks of whole rows (qs_low_ok). */
	QS_FACE_LOW = 2,
};
#define QS_FACE_PACK(n) (QS_FACE_LOW + 2 * ((n) - 2))
#define QS_FACE_SCALE(n) (QS_FACE_PACK(n) + 1)
#define QS_N_FACES (QS_FACE_LOW + 12)
/* The bit width of a lower face (2..7), or 0 for HIGH and Q. */
static inline unsigned qs_face_bits(int face)
{
	return face >= QS_FACE_LOW && face < QS_N_FACES ? 2 + (unsigned)(face - QS_FACE_LOW) / 2 : 0;
}
static inline int qs_face_is_scale(int face)
{
	return face >= QS_FACE_LOW && (face - QS_FACE_LOW) % 2 == 1;
}


typedef struct qs_stream {
	char *name;            /* tensor name or file path, for messages */
	int kind;              /* enum qs_stream_kind */
	int fmt;               /* enum qs_fmt (NONE for BLOB) */
	uint32_t esize;        /* bytes per element of the HIGH face */
	uint64_t elems;
	uint64_t chunk_elems;  /* elements per chunk (the last may be short) */
	uint64_t first_chunk;
	uint64_t n_chunks;
	uint64_t cols;         /* QUANT: elements per row */
	int64_t scale_stream;  /* QUANT: FLOAT stream with one scale per row */
	uint64_t key_base;     /* first chunk key (qs_index_assign_keys) */
	uint8_t *mem;          /* MEM: the bytes (owned) */
	uint64_t *mem_hash;    /* MEM: XXH3-64 of each chunk, checked on every decode */
} qs_stream;

typedef struct qs_chunk {      /* 32 bytes on disk, see FORMAT.md */
	uint64_t off;          /* file offset of part A; part B follows it */
	uint32_t len_a, len_b;
	uint64_t hash_a;       /* XXH3-64 of decoded part A (bytes or INT8 codes) */
	uint64_t hash_b;       /* QUANT: XXH3-64 of the decoded high bytes */
} qs_chunk;

typedef struct qs_extent {     /* 32 bytes on disk */
	uint64_t file_off;
	uint64_t len;
	uint32_t stream;
	uint32_t face;
	uint64_t stream_off;   /* byte offset inside the face */
} qs_extent;

typedef struct qs_vfile {
	char *path;
	uint64_t size;
	uint8_t sha256[32];
	uint64_t first_extent, n_extents;
	int derived;           /* built at open (merged.c, lowview.c): no recorded SHA-256 */
	int merged;            /* merged.c's single file of a sharded view */
} qs_vfile;

typedef struct qs_tensor {
	char *name, *file, *dtype, *reason;
	int ndim;
	uint64_t shape[QS_MAX_DIMS];
	uint64_t nbytes;
	int64_t stream;        /* -1 for an empty tensor */
	int quantized;
	double floor_bytes;
	uint64_t stored_bytes;
} qs_tensor;

typedef struct qs_index {
	qs_stream *streams; size_t n_streams;
	qs_chunk *chunks; size_t n_chunks;
	qs_extent *extents; size_t n_extents;
	qs_vfile *files[QS_N_VIEWS]; size_t n_files[QS_N_VIEWS];   /* 0, 1 stored; the rest generated */
	qs_tensor *tensors; size_t n_tensors;
	char *source_dtype;
	double floor_bytes;
	uint64_t container_bytes;
	/* set by qs_index_validate: what one reader must be able to hold */
	uint64_t max_chunk_bytes;   /* largest decoded chunk face */
	uint64_t max_parts_bytes;   /* largest len_a + len_b */
	uint64_t n_keys;            /* chunk keys in use (qs_index_assign_keys) */
	/* faces with keys: a QUANT stream's chunks of face F take keys
	 * [key_base + face_slot[F] * n_chunks, ... + n_chunks); other streams
	 * have slot 0 (HIGH) only.  HIGH and Q always, the lower faces of the
	 * views opened. */
	uint8_t face_slot[QS_N_FACES];
	unsigned n_slots;
	unsigned low_views;         /* bit N: view N is generated (lowview.c) */
	/* capacities while generated files are appended (qs_index_add_gen_file
	 * grows geometrically: a view of 40,000 files must not copy its arrays
	 * 40,000 times); qs_index_fit makes the arrays exact again */
	size_t cap_streams, cap_extents, cap_files[QS_N_VIEWS];
} qs_index;

/* ---- errors ------------------------------------------------------------ */

/* Fill *err (if non-NULL) and return -1, so callers can `return qs_fail(...)`. */
int qs_fail(qs_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- little endian ----------------------------------------------------- */

static inline uint16_t rd16(const void *p) { const uint8_t *b = p; return (uint16_t)(b[0] | b[1] << 8); }
static inline uint32_t rd32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void wr16(void *p, uint16_t v) { uint8_t *b = p; b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); }
static inline void wr32(void *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr64(void *p, uint64_t v) { memcpy(p, &v, 8); }
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qstore assumes a little-endian host (the container is little-endian)"
#endif

/* overflow-checked arithmetic: return 0 on success */
static inline int mul_ovf(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline int add_ovf(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }

/* ---- io.c: whole transfers; 0 or -errno ------------------------------------ */

int qs_pread_full(int fd, void *buf, size_t len, uint64_t off);
int qs_write_full(int fd, const void *buf, size_t len);

/* ---- a growable string (index.c); arrays grow with qs_grow (qstore.h) ------- */


typedef struct qs_strbuf { char *p; size_t len, cap; int oom; } qs_strbuf;
/* Append n bytes (always NUL-terminated); on allocation failure sets oom
 * and ignores further appends, so callers check once at the end. */
void qs_strbuf_add(qs_strbuf *b, const char *s, size_t n);

/* ---- index helpers (index.c) ------------------------------------------- */

/* A face is decoded in units: one element for HIGH and Q, one row for the
 * lower faces.  qs_face_unit: elements per unit; qs_face_unit_bytes: the
 * bytes a unit decodes to; qs_face_bytes: the whole face; qs_face_chunk_bytes:
 * chunk K's face (a chunk of a lower face holds whole rows). */
uint64_t qs_face_unit(const qs_stream *s, int face);
uint64_t qs_face_unit_bytes(const qs_stream *s, int face);
uint64_t qs_face_bytes(const qs_stream *s, int face);
uint64_t qs_face_chunk_bytes(const qs_stream *s, int face, uint64_t k);
/* Can the N-bit view present QUANT stream S packed?  Its chunks must hold
 * whole rows, and INT4's rows whole groups of QS_INT4_GROUP. */
int qs_low_ok(const qs_stream *s, unsigned n);
/* Elements in chunk K of S (the last chunk may be short). */
size_t qs_chunk_elems(const qs_stream *s, uint64_t k);
/* Give every (stream, face, chunk) a dense key (see face_slot); the lower
 * faces of the views in ix->low_views get keys too.  Called after
 * validation and again whenever streams are added. */
void qs_index_assign_keys(qs_index *ix);
/* The key of chunk K of FACE of stream S. */
static inline uint64_t qs_chunk_key(const qs_index *ix, const qs_stream *s, int face, uint64_t k)
{
	return s->key_base + (uint64_t)ix->face_slot[face] * s->n_chunks + k;
}
void qs_index_free(qs_index *ix);
/* A relative path is acceptable if it has no empty, "." or ".." component,
 * no leading '/', no NUL or control characters and is at most 4095 bytes. */
int qs_path_ok(const char *path);
/* Does S end with SUFFIX? */
int qs_ends_with(const char *s, const char *suffix);
/* Each view's name (qs_view_name): "high", "int8", "int2".."int7". */
extern const char *const qs_view_names[QS_N_VIEWS];
/* Name of the tensor (or file) a stream belongs to, for error messages. */
const char *qs_stream_name(const qs_index *ix, uint64_t stream);

/* Append a file to view V made of MEM (owned; becomes an in-memory stream)
 * followed by the extents of files PARTS[k] past their first SKIP[k] bytes.
 * Returns the new file's index. */
ssize_t qs_index_add_mem_file(qs_index *ix, int v, const char *name, uint8_t *mem, uint64_t mem_len,
			      const size_t *parts, size_t n_parts, const uint64_t *skip, qs_error *err);
/* Append a generated file to view V: extents X[0..nx) in file order (their
 * file_off is ignored), where stream QS_GEN_MEM means MEM (owned; becomes an
 * in-memory stream unless NULL) at stream_off.  SHA256: the file's recorded
 * hash when its bytes are a stored file's, else NULL.  Returns the new
 * file's index. */
#define QS_GEN_MEM UINT32_MAX
ssize_t qs_index_add_gen_file(qs_index *ix, int v, const char *name, uint8_t *mem, uint64_t mem_len,
			      const qs_extent *x, size_t nx, const uint8_t *sha256, qs_error *err);
/* Trim the arrays generated files grew to their sizes: an open container
 * keeps only what it uses (a daemon holds hundreds). */
void qs_index_fit(qs_index *ix);
/* The last extent of F that starts at or before OFF (F has extents). */
uint64_t qs_extent_at(const qs_index *ix, const qs_vfile *f, uint64_t off);

/* Monotonic seconds. */
double qs_now(void);

/* The progress of one long operation, reported to P (may be NULL or have no
 * fn) at most every 0.1 s: qs_tick adds ADD bytes done, qs_tick_end reports
 * done == total once. */
typedef struct qs_ticker {
	const qs_progress *p;
	uint64_t done, total;
	double last;
} qs_ticker;
void qs_tick(qs_ticker *t, uint64_t add);
void qs_tick_end(qs_ticker *t);

/* manifest.c: JSON Lines <-> index (chunks and extents travel as binary
 * tables); one record as a JSON object (for info) */
typedef struct json_t json_t;
json_t *qs_json_stream(const qs_stream *s);
json_t *qs_json_tensor(const qs_tensor *t);
json_t *qs_json_file(const qs_vfile *f, int view);
char *qs_manifest_dump(const qs_index *ix, size_t *len);
int qs_manifest_load(qs_index *ix, const char *json, size_t len,
		     uint64_t n_chunks, uint64_t n_extents, const char *where, qs_error *err);
int qs_index_validate(qs_index *ix, uint64_t data_begin, uint64_t data_end,
		      const char *where, qs_error *err);

#endif /* QS_INTERNAL_H */
