/*
 * derive.c - the INT8 codes of a QUANT chunk whose part A is QDRV: the
 * quantiser of FORMAT.md section 4 applied to the chunk's floats (part B,
 * already decoded and checked) under each row's scale.
 *
 * The packer computed the same codes the same way and recorded their XXH3,
 * which the reader checks: what this computes is covered like any decoded
 * byte.  Inputs no packer writes (a row scale that is not a positive finite
 * number, a float that is not finite) give code 0, by the same rule in every
 * kernel set, so a hostile chunk fails that check instead of reaching
 * undefined arithmetic.
 */
#include <float.h>
#include <string.h>

#include "decode.h"

void qs_derive_rows(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
		    const uint32_t *scales, int8_t *q, qs_derive_row_fn row)
{
	uint64_t r0 = e0 / cols;
	for (size_t i = 0; i < n;) {
		uint64_t r = (e0 + i) / cols;
		size_t end = (size_t)((r + 1) * cols - e0);
		if (end > n)
			end = n;
		float sc = qs_to_f32(f, scales[r - r0]);
		if (sc > 0.0f && sc <= FLT_MAX)
			row(f, in + i * f->esize, end - i, sc, q + i);
		else
			memset(q + i, 0, end - i);
		i = end;
	}
}

static void row_scalar(const qs_fmtinfo *f, const uint8_t *in, size_t n, float sc, int8_t *q)
{
	for (size_t j = 0; j < n; j++) {
		uint32_t b = qs_load(f, in + j * f->esize);
		q[j] = qs_is_finite(f, b) ? (int8_t)qs_quant(qs_to_f32(f, b), sc) : 0;
	}
}

void qs_derive_codes(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
		     const uint32_t *scales, int8_t *q)
{
	qs_derive_rows(f, in, n, e0, cols, scales, q, row_scalar);
}
