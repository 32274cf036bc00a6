/*
 * quantise.c - the quantiser of FORMAT.md section 4 over rows of floats:
 * the packer's codes, and the codes of a QUANT chunk whose part A is QDRV
 * (from the chunk's floats, part B, already decoded and checked).
 *
 * The packer recorded the codes' XXH3, which the reader checks: what this
 * computes is covered like any decoded byte.  Inputs no packer writes (a row
 * scale that is not a positive finite number, a float that is not finite)
 * give code 0, by the same rule in every kernel set, so a hostile chunk fails
 * that check instead of reaching undefined arithmetic.
 */
#include <float.h>
#include <string.h>

#include "quantise.h"

void qs_quantise_rows(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
		      const uint32_t *scales, int8_t *q, qs_quantise_row_fn row)
{
	for (size_t i = 0; i < n;) {
		uint64_t r;
		size_t end = qs_row_end(e0, cols, i, n, &r);
		float sc = qs_to_f32(f, scales[r]);
		if (sc > 0.0f && sc <= FLT_MAX)
			row(f, in + i * f->esize, end - i, sc, q + i);
		else
			memset(q + i, 0, end - i);
		i = end;
	}
}

/* BF16 rows, the common case, in a loop without branches that the compiler
 * vectorises with the baseline SSE2 of any x86-64 (qs_quant's clamps become
 * min/max; a float that is not finite is replaced by 0 before dividing, so
 * no conversion sees a NaN). */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORISE __attribute__((optimize("tree-vectorize")))   /* gcc -O2 alone does not */
#else
#define VECTORISE   /* clang vectorises at -O2 */
#endif
VECTORISE static void row_bf16(const uint8_t *in, size_t n, float sc, int8_t *q)
{
	for (size_t j = 0; j < n; j++) {
		uint32_t b = (uint32_t)in[2 * j] | (uint32_t)in[2 * j + 1] << 8;
		int fin = (b & 0x7fff) <= 0x7f7f;
		q[j] = (int8_t)(fin ? qs_quant(qs_f32_from_bits(fin ? b << 16 : 0), sc) : 0);
	}
}

static void row_scalar(const qs_fmtinfo *f, const uint8_t *in, size_t n, float sc, int8_t *q)
{
	if (f->fmt == QS_FMT_BF16) {
		row_bf16(in, n, sc, q);
		return;
	}
	for (size_t j = 0; j < n; j++) {
		uint32_t b = qs_load(f, in + j * f->esize);
		q[j] = qs_is_finite(f, b) ? (int8_t)qs_quant(qs_to_f32(f, b), sc) : 0;
	}
}

void qs_quantise_scalar(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
			const uint32_t *scales, int8_t *q)
{
	qs_quantise_rows(f, in, n, e0, cols, scales, q, row_scalar);
}
