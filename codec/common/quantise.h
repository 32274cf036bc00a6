/*
 * quantise.h - the INT8 codes of whole rows of floats (FORMAT.md section 4),
 * for the packer's first pass and for chunks whose codes are derived from
 * the floats (QDRV).  A portable kernel and an AVX-512 one that gives the
 * same codes; the decoder's kernel sets (decompress/dispatch.c) hold them,
 * and pack.c hands the chosen one to the packer.
 */
#ifndef QS_QUANTISE_H
#define QS_QUANTISE_H

#include <stddef.h>

#include "floatfmt.h"

/* q[i] for n floats, elements e0.. of a tensor with `cols` columns;
 * scales[r] is the scale of row e0/cols + r.  Rows whose scale is not a
 * positive finite value, and floats that are not finite, get code 0 (no
 * packer writes either; every kernel treats them alike). */
typedef void (*qs_quantise_fn)(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
			       const uint32_t *scales, int8_t *q);
void qs_quantise_scalar(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
			const uint32_t *scales, int8_t *q);
void qs_quantise_avx512(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
			const uint32_t *scales, int8_t *q);

/* Both walk the rows with this, giving each row's floats to ROW with the
 * row's scale (positive and finite; rows without one get code 0). */
typedef void (*qs_quantise_row_fn)(const qs_fmtinfo *f, const uint8_t *in, size_t n, float sc, int8_t *q);
void qs_quantise_rows(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
		      const uint32_t *scales, int8_t *q, qs_quantise_row_fn row);

#endif
