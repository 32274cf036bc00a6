/*
 * float_dec.c - decoders for FSYM, QCODE and QRES parts (see codecs.h).
 *
 * Speed: element i of a part uses state i mod ways (32 for any part of a
 * few thousand elements), so the CPU runs that many independent decode
 * chains side by side instead of waiting on one.  Each loop runs in batches:
 * a batch never consumes more words than remain (at most ELEM_WORD_BYTES per
 * element), so inside it the refill is an unchecked, branch-free load; near
 * the end of the part every read is checked, so a damaged part can never read
 * outside it.  Every function that sees the states and the word pointer is
 * inlined into its kernel, so they stay locals whose address never escapes:
 * the output is written through byte pointers, which may alias anything
 * else and would force a reload of the state after every store.  The common element of each codec takes one straight path with
 * no data-dependent branch; rare ones (a code-0 float, a subnormal, a bucket
 * above 2^16) leave it for the general decoding.  Every decoder also checks
 * what a hostile part could get wrong: table sums, symbols impossible under
 * the row's bucket, words running out, and the final states.
 */
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
static int read_shift(const qs_fmtinfo *f, const uint8_t **p, size_t *len, unsigned *shift)
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

ALWAYS_INLINE int close_part(const rans_dec *rd, const dstream *d)
{
	if (d->bad || d->ptr != d->end)
		return -1;
	for (unsigned i = 0; i < rd->ways; i++)
		if (rd->x[i] != RANS_L)
			return -1;
	return 0;
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

/* ---- FSYM --------------------------------------------------------------- */

#define FSYM_SLOW 0xff

/* For 16-bit floats, everything one slot decodes to, in one load: the
 * symbol's table entry, its mantissa width (FSYM_SLOW when the mantissa is
 * not a power-of-two count: subnormals) and the float's fixed bits. */
static void fsym_fast_build(const qs_fmtinfo *f, unsigned shift, const ft_dec_entry *tab, fsym_fast *ff)
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

ALWAYS_INLINE int fsym16(qs_dec_scratch *s, const qs_fmtinfo *f, unsigned shift, rans_dec *rd, dstream *d,
		  uint8_t *out, size_t n)
{
	if (n)
		fsym_fast_build(f, shift, s->tab, s->ffast);
	const fsym_fast *ff = s->ffast;
	const size_t wm = rd->ways - 1;
	uint64_t *X = rd->x;
	size_t i = 0;
	for (size_t b; (b = batch(d, n - i)) > 0;) {
		for (size_t stop = i + b; i < stop; i++) {
			uint64_t x = X[i & wm];
			const fsym_fast *e = &ff[x & (FT_M - 1)];
			uint32_t v;
			if (e->w != FSYM_SLOW) {
				v = e->base + (((uint32_t)(x >> FT_BITS) & ((1u << e->w) - 1)) << e->shift);
				x = e->freq * (x >> (FT_BITS + e->w)) + e->bias;
				renorm(&x, d, 0);
			} else {
				v = fsym(&x, d, f, s->tab, f->magmask, shift, 0);
			}
			X[i & wm] = x;
			store(out + 2 * i, v, 2);
		}
	}
	for (; i < n && !d->bad; i++)
		store(out + 2 * i, fsym(&X[i & wm], d, f, s->tab, f->magmask, shift, 1), 2);
	return close_part(rd, d);
}

ALWAYS_INLINE int fsym32(qs_dec_scratch *s, const qs_fmtinfo *f, unsigned shift, rans_dec *rd, dstream *d,
		  uint8_t *out, size_t n)
{
	const size_t wm = rd->ways - 1;
	uint64_t *X = rd->x;
	size_t i = 0;
	for (size_t b; (b = batch(d, n - i)) > 0;)
		for (size_t stop = i + b; i < stop; i++)
			store(out + 4 * i, fsym(&X[i & wm], d, f, s->tab, f->magmask, shift, 0), 4);
	for (; i < n && !d->bad; i++)
		store(out + 4 * i, fsym(&rd->x[i & wm], d, f, s->tab, f->magmask, shift, 1), 4);
	return close_part(rd, d);
}

int qs_dec_fsym(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n)
{
	rans_dec rd;
	dstream d;
	int empty;
	unsigned shift;
	if (read_shift(f, &p, &len, &shift) || open_part(p, len, f->nsym, s->tab, &empty, &rd, &d) || (empty && n))
		return -1;
	return f->esize == 2 ? fsym16(s, f, shift, &rd, &d, out, n) : fsym32(s, f, shift, &rd, &d, out, n);
}

/* ---- QCODE -------------------------------------------------------------- */

/* The unchecked batches; wm is the constant ways - 1 for the usual 32. */
ALWAYS_INLINE size_t qcode_run(rans_dec *rd, dstream *d, const ft_dec_entry *tab, int8_t *q, size_t n,
			       const size_t wm)
{
	size_t i = 0;
	for (size_t b; (b = batch(d, n - i)) > 0;)
		for (size_t stop = i + b; i < stop; i++)
			q[i] = (int8_t)(sym(&rd->x[i & wm], d, tab, 0) - 128);
	return i;
}

int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	rans_dec rd;
	dstream d;
	int empty;
	size_t i = 0;
	if (open_part(p, len, 256, s->tab, &empty, &rd, &d) || (empty && n))
		return -1;
	if (rd.ways == RANS_MAX_WAYS)
		i = qcode_run(&rd, &d, s->tab, q, n, RANS_MAX_WAYS - 1);
	else
		i = qcode_run(&rd, &d, s->tab, q, n, rd.ways - 1);
	for (; i < n && !d.bad; i++)
		q[i] = (int8_t)(sym(&rd.x[i & (rd.ways - 1)], &d, s->tab, 1) - 128);
	return close_part(&rd, &d);
}

/* ---- QRES --------------------------------------------------------------- */

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

/* One row's elements [i, end): the common element (code != 0, bucket of
 * 1..2^16 floats; code 0's entry has n = 0) decodes on the straight path. */
ALWAYS_INLINE size_t qres_row(dstream *d, uint64_t *X, size_t wm, const qs_fmtinfo *f, const ft_dec_entry *tab,
			      const qs_qtab *t, const int8_t *q, int empty, uint8_t *out, size_t i, size_t end,
			      const unsigned es)
{
	const uint32_t neg = 1u << (es * 8 - 1);
	for (size_t b; i < end && (b = batch(d, end - i)) > 0;) {
		for (size_t stop = i + b; i < stop; i++) {
			int c = q[i];
			const qs_bucket *bk = &t->b[c + 128];
			uint64_t x = X[i & wm];
			uint32_t v;
			if (bk->n - 1u < RANS_UNIFORM_MAX)
				v = (c < 0 ? neg : 0) | (bk->lo + uniform(&x, d, bk->n, bk->step, 0)) << bk->shift;
			else
				v = qres_one(&x, d, f, tab, t, c, empty, 0, es);
			X[i & wm] = x;
			store(out + es * i, v, es);
		}
	}
	for (; i < end && !d->bad; i++)
		store(out + es * i, qres_one(&X[i & wm], d, f, tab, t, q[i], empty, 1, es), es);
	return i;
}

ALWAYS_INLINE int qres_loop(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len,
			    const int8_t *q, size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales,
			    uint8_t *out, const unsigned es)
{
	rans_dec rd;
	dstream d;
	int empty;
	uint64_t row0 = e0 / cols;
	unsigned shift;
	if (read_shift(f, &p, &len, &shift) || open_part(p, len, f->nsym, s->tab, &empty, &rd, &d))
		return -1;
	for (size_t i = 0; i < n && !d.bad;) {
		uint64_t r = (e0 + i) / cols;
		size_t end = (size_t)((r + 1) * cols - e0);
		if (end > n)
			end = n;
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r - row0], shift);
		i = qres_row(&d, rd.x, rd.ways - 1, f, s->tab, t, q, empty, out, i, end, es);
	}
	return close_part(&rd, &d);
}

int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out)
{
	return f->esize == 2 ? qres_loop(s, f, p, len, q, n, e0, cols, scales, out, 2)
		: qres_loop(s, f, p, len, q, n, e0, cols, scales, out, 4);
}
