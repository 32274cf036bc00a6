/*
 * quant_pass.c - the first pass over a QUANT chunk: its INT8 codes, the
 * counts that either coding of the chunk needs, and what each would cost.
 *
 * A QUANT chunk can be stored two ways (FORMAT.md section 3): the codes
 * (QCODE) plus each float's position in its bucket (QRES), or the floats
 * alone (FSYM) with the codes derived from them (QDRV).  They carry the same
 * information, so neither is lossy; their sizes differ with the shape of the
 * weights: positions in a bucket cost log2 n with no statistics (the row
 * scale does the modelling), which wins by far on ternary or sparse rows,
 * while on dense Gaussian-like rows the floats' own sign+exponent statistics
 * are as good or better, and decode in one rANS step per weight instead of
 * two.  The estimates below are each coding's cost under the frequency
 * tables its coder will build, plus its parts' headers: within about 0.2%
 * of what the coders write, which is what choosing between them needs.
 */
#include <math.h>
#include <string.h>

#include "encode.h"

void qs_enc_lg_init(uint32_t lg8[256])
{
	for (int i = 0; i < 256; i++)
		lg8[i] = (uint32_t)lrint(log2(1.0 + i / 256.0) * 65536.0);
}

/* log2(n) in units of 2^-16 bits (n >= 1), to 8 bits of mantissa: good to
 * 0.006 bit, and no libm call per weight. */
static inline uint32_t lg_fix(const uint32_t lg8[256], uint32_t n)
{
	unsigned e = 31 - (unsigned)__builtin_clz(n);
	uint32_t frac = (uint32_t)(((uint64_t)n << (32 - e)) >> 24) & 255;
	return e << 16 | lg8[frac];
}

/* The cost of the counts' symbols under the 12-bit table the coder will
 * build from them (ft_build's rounding costs up to 1% on 256 codes, enough
 * to tip a choice that an ideal order-0 estimate would get wrong). */
double qs_enc_table_bits(const uint32_t *counts, uint32_t nsym, ft_enc *ft)
{
	double bits = 0;
	ft_build(counts, nsym, ft);
	for (uint32_t y = 0; y < nsym; y++)
		if (counts[y])
			bits += counts[y] * (FT_BITS - log2(ft->freq[y]));
	return bits;
}

/* What a coded part costs besides its symbols: tag and shift bytes, the
 * rANS states (FORMAT.md "rANS streams") and about 12 bits of frequency
 * table per symbol present. */
double qs_enc_part_bits(size_t n, const uint32_t *counts, uint32_t nsym)
{
	double bits = 8.0 * (2 + 1 + 8 * rans_ways_for(n));
	for (uint32_t y = 0; y < nsym; y++)
		bits += counts[y] ? 12 : 0;
	return bits;
}

/* the mantissa bits of every float counted in COUNTS (sign+exponent symbols) */
static double mantissa_bits(const qs_fmtinfo *f, const uint32_t *counts, unsigned shift)
{
	double bits = 0;
	for (uint32_t y = 0; y < f->nsym; y++) {
		if (!counts[y])
			continue;
		unsigned sh = shift;
		uint32_t first, sign;
		uint64_t n = qs_fsym_count_shifted(f, y, f->magmask, &sh, &first, &sign);
		bits += n > 1 ? counts[y] * log2((double)n) : 0;
	}
	return bits;
}

/* The estimates look at one element in STRIDE (at least 8192 of them),
 * starting each row at another column so that no column period aligns with
 * the sample; the counts are scaled up to the chunk.  Sampling keeps the
 * choice off the packer's profile; the 1% margin of the choice (pipeline.c)
 * is several times the sampling error on chunks of 64K weights and up. */
#define EST_MIN_SAMPLE 8192u
#define EST_MAX_STRIDE 8u

void qs_enc_quantise(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0,
		     uint64_t cols, const uint32_t *scales, int8_t *q, qs_quant_est *est)
{
	uint32_t base, mant_or = 0;
	for (size_t i = 0; i < n; i++)
		mant_or = qs_shift_acc(f, mant_or, qs_load(f, in + i * f->esize));
	unsigned shift = qs_shift_of(f, mant_or);
	s->quantise(f, in, n, e0, cols, scales, q);
	memset(s->counts, 0, sizeof(s->counts));
	memset(s->fcounts, 0, sizeof(s->fcounts));
	memset(s->qcounts, 0, sizeof(s->qcounts));
	size_t stride = n / EST_MIN_SAMPLE, taken = 0;
	stride = stride < 1 ? 1 : stride > EST_MAX_STRIDE ? EST_MAX_STRIDE : stride;
	uint64_t row0 = e0 / cols, pos = 0;   /* sum of log2 n over nonzero codes, 2^-16 bits */
	for (size_t i = 0; i < n;) {
		uint64_t r;
		size_t end = qs_row_end(e0, cols, i, n, &r);
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r], shift);
		/* each row starts the sample at another column (its tensor row mod STRIDE) */
		for (size_t j = i + (size_t)((row0 + r) % stride); j < end; j += stride, taken++) {
			uint32_t y = qs_fsym(f, qs_load(f, in + j * f->esize), &base);
			int c = q[j];
			s->fcounts[y]++;
			s->qcounts[c + 128]++;
			if (c)
				pos += lg_fix(s->lg8, t->b[c + 128].n | !t->b[c + 128].n);
			else
				s->counts[y]++;
		}
		i = end;
	}
	double scale = taken ? (double)n / (double)taken : 0;
	est->shift = shift;
	est->derived = scale * (qs_enc_table_bits(s->fcounts, f->nsym, &s->ft) + mantissa_bits(f, s->fcounts, shift))
		+ qs_enc_part_bits(n, s->fcounts, f->nsym);
	est->stored = scale * (qs_enc_table_bits(s->qcounts, 256, &s->ft) + pos / 65536.0
			       + qs_enc_table_bits(s->counts, f->nsym, &s->ft) + mantissa_bits(f, s->counts, shift))
		+ qs_enc_part_bits(n, s->qcounts, 256) + qs_enc_part_bits(n, s->counts, f->nsym);
}
