/*
 * dec_core.h - the scalar rANS decoding steps every kernel set shares
 * (float_dec.c, and the SIMD kernels for their tails and rare elements):
 * refills, the symbol kinds of FORMAT.md "rANS streams", the sign+exponent
 * symbol, one QRES element, and opening and closing a part.  Everything is
 * inlined into its kernel, so that the states and the word pointer stay
 * locals whose address never escapes (see float_dec.c).
 */
#ifndef QS_DEC_CORE_H
#define QS_DEC_CORE_H

#include <string.h>

#include "decode.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The part's shared word stream. */
typedef struct dstream {
	const uint8_t *ptr, *end;
	int bad;
} dstream;

/* Most word bytes one element can consume (an F32 float under code 0:
 * symbol + split mantissa = 3 words). */
#define ELEM_WORD_BYTES (3 * 4)

/* checked is a compile-time constant at every call site */
ALWAYS_INLINE void renorm(uint64_t *x, dstream *d, const int checked)
{
	if (!checked) {
		/* branch-free: the refill is taken about once per six symbols, too
		 * irregular for the predictor; the batch made sure the word is there */
		uint32_t w;
		memcpy(&w, d->ptr, 4);
		/* arithmetic, not a ?: the compiler turns that into a branch */
		uint64_t need = *x < RANS_L;
		*x = *x << (need * 32) | (w & (0 - need));
		d->ptr += need * 4;
		return;
	}
	if (*x < RANS_L) {
		uint32_t w = 0;
		if (d->ptr < d->end) {
			memcpy(&w, d->ptr, 4);
			d->ptr += 4;
		} else {
			d->bad = 1;
		}
		*x = *x << 32 | w;
	}
}

/* elements that can be decoded with unchecked refills from here on */
static inline size_t batch(const dstream *d, size_t left)
{
	size_t safe = (size_t)(d->end - d->ptr) / ELEM_WORD_BYTES;
	return safe < left ? safe : left;
}

ALWAYS_INLINE uint32_t sym(uint64_t *x, dstream *d, const ft_dec_entry *tab, const int checked)
{
	const ft_dec_entry *e = &tab[*x & (FT_M - 1)];
	*x = e->freq * (*x >> FT_BITS) + e->bias;
	renorm(x, d, checked);
	return e->sym;
}

ALWAYS_INLINE uint32_t bits(uint64_t *x, dstream *d, unsigned k, const int checked)
{
	uint32_t v = (uint32_t)(*x & ((1u << k) - 1));
	*x >>= k;
	renorm(x, d, checked);
	return v;
}

/* value in [0, n), 1 <= n <= 2^16 (see rans.h for the slot layout; n = 1,
 * step 2^48, leaves the state as it is: "nothing", without a branch) */
ALWAYS_INLINE uint32_t uniform(uint64_t *x, dstream *d, uint32_t n, uint64_t step, const int checked)
{
	uint32_t slot = (uint32_t)(*x & 0xffff);
	uint32_t v = (uint32_t)(((uint64_t)(slot + 1) * n - 1) >> RANS_UNIFORM_BITS);
	uint64_t at = v * step;   /* start(v + 1) = (at + step) >> 32: no second multiply */
	uint32_t start = (uint32_t)(at >> 32), next = (uint32_t)((at + step) >> 32);
	*x = (next - start) * (*x >> RANS_UNIFORM_BITS) + slot - start;
	renorm(x, d, checked);
	return v;
}

/* mirror of rans_put_count: any 1 <= n <= 2^32 */
ALWAYS_INLINE uint32_t count(uint64_t *x, dstream *d, uint64_t n, const int checked)
{
	unsigned k = rans_log2_exact(n);
	if (k <= 16)
		return k ? bits(x, d, k, checked) : 0;
	if (n <= RANS_UNIFORM_MAX)
		return uniform(x, d, (uint32_t)n, rans_step_make((uint32_t)n), checked);
	uint64_t nh = ((n - 1) >> 16) + 1;
	unsigned kh = rans_log2_exact(nh);
	uint32_t hi = kh <= 16 ? (kh ? bits(x, d, kh, checked) : 0)
		: uniform(x, d, (uint32_t)nh, rans_step_make((uint32_t)nh), checked);
	uint32_t v = hi << 16 | bits(x, d, 16, checked);
	if (v >= n)
		d->bad = 1;
	return v;
}

/* A sign+exponent symbol and its mantissa under top, in units of 2^shift:
 * one joint step when the mantissa is w <= 19 raw bits above the slot,
 * else the symbol then count(n) (mirror of put_fsym in float_enc.c). */
ALWAYS_INLINE uint32_t fsym(uint64_t *x, dstream *d, const qs_fmtinfo *f, const ft_dec_entry *tab, uint32_t top,
			    unsigned shift, const int checked)
{
	uint32_t first, sign, v;
	const ft_dec_entry *e = &tab[*x & (FT_M - 1)];
	uint64_t n = qs_fsym_count_shifted(f, e->sym, top, &shift, &first, &sign);
	unsigned w = rans_log2_exact(n);
	if (!n) {
		d->bad = 1;
		return 0;
	}
	if (w <= RANS_JOINT_MAX_BITS) {
		v = (uint32_t)(*x >> FT_BITS) & ((1u << w) - 1);
		*x = e->freq * (*x >> (FT_BITS + w)) + e->bias;
		renorm(x, d, checked);
	} else {
		*x = e->freq * (*x >> FT_BITS) + e->bias;
		renorm(x, d, checked);
		v = count(x, d, n, checked);
	}
	return sign << (f->exp_bits + f->mant_bits) | (first + v) << shift;
}

/* The shift byte that starts FSYM and QRES parts. */
static inline int read_shift(const qs_fmtinfo *f, const uint8_t **p, size_t *len, unsigned *shift)
{
	if (!*len || **p > f->mant_bits)
		return -1;
	*shift = **p;
	(*p)++;
	(*len)--;
	return 0;
}

ALWAYS_INLINE int open_part(const uint8_t *p, size_t len, uint32_t nsym, ft_dec_entry *tab, int *empty,
		     rans_dec *rd, dstream *d)
{
	size_t t = ft_read(p, len, nsym, tab, empty);
	if (!t || rans_dec_init(rd, p + t, len - t))
		return -1;
	*d = (dstream){ rd->ptr, rd->end, 0 };
	return 0;
}

/* An FSYM or QRES part: shift byte, sign+exponent table, stream. */
ALWAYS_INLINE int open_float_part(const qs_fmtinfo *f, const uint8_t *p, size_t len, ft_dec_entry *tab,
				  unsigned *shift, int *empty, rans_dec *rd, dstream *d)
{
	return read_shift(f, &p, &len, shift) || open_part(p, len, f->nsym, tab, empty, rd, d) ? -1 : 0;
}

/* A QCODE part of n codes: code table, stream; a table without symbols
 * holds no code, so it is damage unless n is 0. */
ALWAYS_INLINE int open_qcode_part(const uint8_t *p, size_t len, size_t n, ft_dec_entry *tab, rans_dec *rd,
				  dstream *d)
{
	int empty;
	return open_part(p, len, 256, tab, &empty, rd, d) || (empty && n) ? -1 : 0;
}

/* An open QTUP part of n codes: tuple length m, number of tuples nt, and
 * the number of tuple values the last one may take (k^(codes left for it));
 * tup[t] holds tuple t's m codes as bytes, first code lowest. */
typedef struct qtup_part {
	unsigned m;
	size_t n, nt;
	uint32_t last;
	const uint64_t *tup;
} qtup_part;

/* m, k, the k codes (q + 128, increasing), the table of the k^m tuples,
 * stream (FORMAT.md "QTUP"). */
ALWAYS_INLINE int open_qtup_part(const uint8_t *p, size_t len, size_t n, ft_dec_entry *tab, uint64_t *tup,
				 qtup_part *t, rans_dec *rd, dstream *d)
{
	if (len < 2 || p[0] < 2 || p[0] > QS_QTUP_MAX_M || p[1] < 1 || p[1] > 16 || len < 2u + p[1])
		return -1;
	unsigned m = p[0], k = p[1], km = 1;
	for (unsigned i = 0; i < m; i++)
		if ((km *= k) > QS_QTUP_MAX_SYMS)
			return -1;
	const uint8_t *alpha = p + 2;
	for (unsigned i = 1; i < k; i++)
		if (alpha[i] <= alpha[i - 1])
			return -1;
	for (uint32_t y = 0; y < km; y++) {
		uint64_t v = 0;
		for (unsigned i = 0, r = y; i < m; i++, r /= k)
			v |= (uint64_t)(uint8_t)(alpha[r % k] - 128) << (8 * i);
		tup[y] = v;
	}
	*t = (qtup_part){ m, n, (n + m - 1) / m, 1, tup };
	for (size_t i = t->nt ? (t->nt - 1) * m : 0; i < n; i++)
		t->last *= k;
	int empty;
	return open_part(p + 2 + k, len - 2 - k, km, tab, &empty, rd, d) || (empty && n) ? -1 : 0;
}

/* Tuple j's codes (the decoded tuple value y) into q[0..n): whole 8-byte
 * stores while they fit, exact ones at the end, where the last tuple's
 * digits past n must be 0 (y < last). */
ALWAYS_INLINE void qtup_put(const qtup_part *t, int8_t *q, size_t j, uint32_t y, dstream *d)
{
	size_t at = j * t->m;
	if (at + 8 <= t->n) {
		memcpy(q + at, &t->tup[y], 8);
		return;
	}
	uint64_t v = t->tup[y];
	memcpy(q + at, &v, t->n - at < t->m ? t->n - at : t->m);
	if (j == t->nt - 1 && y >= t->last)
		d->bad = 1;
}

ALWAYS_INLINE int close_part(const rans_dec *rd, const dstream *d)
{
	if (d->bad || d->ptr != d->end)
		return -1;
	for (unsigned i = 0; i < rd->ways; i++)
		if (rd->x[i] != RANS_L)
			return -1;
	return 0;
}

/* QTUP's tuples from j on, one at a time (all of them in the portable
 * kernel; what the vector loop left in the AVX-512 one), then the end of
 * the part. */
ALWAYS_INLINE int qtup_rest(const qtup_part *t, int8_t *q, size_t j, rans_dec *rd, dstream *d,
			    const ft_dec_entry *tab)
{
	const size_t wm = rd->ways - 1;
	for (size_t b; (b = batch(d, t->nt - j)) > 0;)
		for (size_t stop = j + b; j < stop; j++)
			qtup_put(t, q, j, sym(&rd->x[j & wm], d, tab, 0), d);
	for (; j < t->nt && !d->bad; j++)
		qtup_put(t, q, j, sym(&rd->x[j & wm], d, tab, 1), d);
	return close_part(rd, d);
}

ALWAYS_INLINE void store(uint8_t *out, uint32_t v, const unsigned es)
{
	if (es == 2) {
		uint16_t h = (uint16_t)v;
		memcpy(out, &h, 2);
	} else {
		memcpy(out, &v, 4);
	}
}

/* Any element: code 0 is a sign+exponent symbol under the row's top0, any
 * other code the float's position in its bucket. */
ALWAYS_INLINE uint32_t qres_one(uint64_t *x, dstream *d, const qs_fmtinfo *f, const ft_dec_entry *tab,
				const qs_qtab *t, int q, int empty, const int checked, const unsigned es)
{
	if (!q) {
		if (empty)
			d->bad = 1;
		return fsym(x, d, f, tab, t->top0, t->shift, checked);
	}
	const qs_bucket *b = &t->b[q + 128];
	uint32_t idx = 0;
	if (b->n > RANS_UNIFORM_MAX)
		idx = count(x, d, b->n, checked);
	else if (b->n)
		idx = uniform(x, d, b->n, b->step, checked);
	else
		d->bad = 1;   /* a code no float of this row can have */
	return (q < 0 ? 1u << (es * 8 - 1) : 0) | (b->lo + idx) << b->shift;
}

/* Steps of a QRES part that leave the state as it is, taken without any
 * arithmetic: a code whose bucket holds one float (uniform(1)), and, when
 * ZOK, a code-0 float of a table whose one symbol has one magnitude ZVAL
 * (the exact zeros of ternary and sparse rows: x = 2^12 (x >> 12) + slot).
 * Returns 1 with the float in *v, or 0 for a step that needs decoding. */
ALWAYS_INLINE int qres_skip(const qs_qtab *t, int c, int zok, uint32_t zval, uint32_t neg, uint32_t *v)
{
	const qs_bucket *bk = &t->b[c + 128];
	if (bk->n == 1) {
		*v = (c < 0 ? neg : 0) | bk->lo << bk->shift;
		return 1;
	}
	if (!c && zok) {
		*v = zval;
		return 1;
	}
	return 0;
}

/* Sparse groups of QRES rows (ternary and sparse weights, where most steps
 * leave their state as it is): the floats the codes alone determine are
 * written for a whole group of 64 (a multiple of 64 from the part's start)
 * first, and the elements left, the mask HARD from element i, are decoded
 * one by one in element order, so that their words are taken in order.
 * Only those can take words: the bound on the stream counts them alone.
 * A group with more than QRES_SPARSE_MAX of them is decoded dense instead,
 * and so are the QRES_BACKOFF groups after it without looking (dense rows
 * would otherwise pay the look on every group). */
#define QRES_SPARSE_MAX 16
#define QRES_BACKOFF 7

ALWAYS_INLINE void qres_hard(dstream *d, uint64_t *X, size_t wm, const qs_fmtinfo *f, const ft_dec_entry *tab,
			     const qs_qtab *t, const int8_t *q, int empty, uint8_t *out, size_t i, uint64_t hard,
			     const unsigned es)
{
	size_t h = (size_t)__builtin_popcountll(hard);
	if (batch(d, h) == h) {
		for (; hard; hard &= hard - 1) {
			size_t j = i + (size_t)__builtin_ctzll(hard);
			store(out + es * j, qres_one(&X[j & wm], d, f, tab, t, q[j], empty, 0, es), es);
		}
	} else {
		for (; hard; hard &= hard - 1) {
			size_t j = i + (size_t)__builtin_ctzll(hard);
			store(out + es * j, qres_one(&X[j & wm], d, f, tab, t, q[j], empty, 1, es), es);
		}
	}
}

/* The dense span after a look at i (a multiple of 64) found no sparse
 * group, or while backing off: to the next multiple of 64, plus the groups
 * still to back off; returns its end, at most END. */
static inline size_t qres_dense_end(size_t i, size_t end, unsigned *backoff)
{
	size_t lim = (i | 63) + 1 + 64 * (size_t)*backoff;
	size_t groups = (lim - i + 63) / 64;
	*backoff = groups > *backoff ? 0 : *backoff - (unsigned)groups;
	return lim < end ? lim : end;
}

/* Whether a QRES part's code-0 table is one symbol of one magnitude: then
 * *zval is that float and *ztop its magnitude (the skip applies in rows
 * whose top0 is at least that). */
static inline int qres_zfix(const qs_fmtinfo *f, const ft_dec_entry *tab, unsigned shift, int empty, uint32_t *zval,
			    uint32_t *ztop)
{
	uint32_t first, sign;
	unsigned sh = shift;
	if (empty || tab[0].freq != FT_M || qs_fsym_count_shifted(f, tab[0].sym, f->magmask, &sh, &first, &sign) != 1)
		return 0;
	*ztop = first << sh;
	*zval = sign << (f->exp_bits + f->mant_bits) | *ztop;
	return 1;
}


/* ---- FSYM of 16-bit floats ------------------------------------------------ */

#define FSYM_SLOW 0xff

/* For 16-bit floats, everything one slot decodes to, in one load: the
 * symbol's table entry, its mantissa width (FSYM_SLOW when the mantissa is
 * not a power-of-two count: subnormals) and the float's fixed bits. */
static inline void fsym_fast_build(const qs_fmtinfo *f, unsigned shift, const ft_dec_entry *tab, fsym_fast *ff)
{
	for (uint32_t s = 0; s < FT_M; s++) {
		unsigned sh = shift;
		uint32_t first, sign;
		uint64_t n = qs_fsym_count_shifted(f, tab[s].sym, f->magmask, &sh, &first, &sign);
		unsigned w = rans_log2_exact(n);
		ff[s] = (fsym_fast){ tab[s].freq, tab[s].bias,
				     (uint16_t)(sign << (f->exp_bits + f->mant_bits) | first << sh),
				     (uint8_t)(w <= RANS_JOINT_MAX_BITS ? w : FSYM_SLOW), (uint8_t)sh };
	}
}

#endif
