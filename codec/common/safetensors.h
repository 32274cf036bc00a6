/*
 * safetensors.h - a validating reader of safetensors headers.
 *
 * Enforces what the reference reader enforces (BRIEF.md): header length at
 * most 100,000,000, UTF-8 JSON object, entries {dtype, shape, data_offsets}
 * whose sorted ranges start at 0 and are back to back, size = product(shape)
 * x dtype size, file length = 8 + N + last end, __metadata__ string->string.
 * Unknown dtypes are accepted (stored losslessly, never quantised) but their
 * size cannot be checked.
 */
#ifndef QS_SAFETENSORS_H
#define QS_SAFETENSORS_H

#include <stdint.h>
#include <stddef.h>
#include <jansson.h>

#include "internal.h"

#define QS_ST_MAX_HEADER 100000000ull

typedef struct qs_st_tensor {
	char *name;
	char dtype[24];
	int dsize;                 /* bytes per element, 0 if unknown */
	int ndim;
	uint64_t shape[QS_MAX_DIMS];
	uint64_t begin, end;       /* relative to the data start */
} qs_st_tensor;

typedef struct qs_st_file {
	uint64_t header_len;       /* N */
	uint64_t data_start;       /* 8 + N */
	qs_st_tensor *t;           /* sorted by begin */
	size_t n;
	json_t *metadata;          /* __metadata__ object or NULL (owned) */
} qs_st_file;

int qs_dtype_size(const char *dtype);  /* 0 if unknown */
/* head = the first 8 + N bytes of the file (or at least 8 to learn N):
 * qs_st_header_len() returns N after checking it against the file size. */
int qs_st_header_len(const char *name, const uint8_t first8[8], uint64_t file_size,
		     uint64_t *n, qs_error *err);
int qs_st_parse(const char *name, const uint8_t *json, size_t n, uint64_t file_size,
		qs_st_file *out, qs_error *err);
void qs_st_free(qs_st_file *f);

/* ---- writing a header: the one writer of every generated header ---------
 * Layout of the reference writer: 8-byte length, then compact ASCII JSON
 * {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...}
 * padded with spaces to a multiple of 8.  Entries are written one at a time
 * (one small tree each), so 100,000 tensors never build one huge tree. */
typedef struct qs_st_entry {
	const char *name, *dtype;
	int ndim;
	const uint64_t *shape;
	uint64_t begin, end;       /* relative to the data start */
} qs_st_entry;

/* METADATA NULL writes {"format":"pt"} (transformers requires it). */
void qs_st_header_begin(qs_strbuf *b, const json_t *metadata);
void qs_st_header_add(qs_strbuf *b, const qs_st_entry *e);
/* Close, pad, write the length: 0, or -1 when out of memory (b freed). */
int qs_st_header_end(qs_strbuf *b);
json_t *qs_shape_json(const uint64_t *shape, int ndim);

#endif
