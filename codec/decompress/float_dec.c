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
 * else and would force a reload of the state after every store.  The common
 * element of each codec takes one straight path with no data-dependent
 * branch; rare ones (a code-0 float, a subnormal, a bucket above 2^16)
 * leave it for the general decoding.  Every decoder also checks
 * what a hostile part could get wrong: table sums, symbols impossible under
 * the row's bucket, words running out, and the final states.
 */
#include "dec_core.h"

/* ---- FSYM --------------------------------------------------------------- */

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
	if (open_float_part(f, p, len, s->tab, &shift, &empty, &rd, &d) || (empty && n))
		return -1;
	return f->esize == 2 ? fsym16(s, f, shift, &rd, &d, out, n) : fsym32(s, f, shift, &rd, &d, out, n);
}

/* ---- QCODE -------------------------------------------------------------- */

int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	rans_dec rd;
	dstream d;
	size_t i = 0;
	if (open_qcode_part(p, len, n, s->tab, &rd, &d))
		return -1;
	const size_t wm = rd.ways - 1;
	for (size_t b; (b = batch(&d, n - i)) > 0;)
		for (size_t stop = i + b; i < stop; i++)
			q[i] = (int8_t)(sym(&rd.x[i & wm], &d, s->tab, 0) - 128);
	for (; i < n && !d.bad; i++)
		q[i] = (int8_t)(sym(&rd.x[i & wm], &d, s->tab, 1) - 128);
	return close_part(&rd, &d);
}

/* ---- QTUP --------------------------------------------------------------- */

int qs_dec_qtup(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	rans_dec rd;
	dstream d;
	qtup_part t;
	if (open_qtup_part(p, len, n, s->tab, s->tup, &t, &rd, &d))
		return -1;
	return qtup_rest(&t, q, 0, &rd, &d, s->tab);
}

/* ---- QRES --------------------------------------------------------------- */

/* Elements [i, stop), all within the caller's batch: the common element
 * (code != 0, bucket of 1..2^16 floats; code 0's entry has n = 0) decodes
 * on the straight path, steps that leave the state as it is take none
 * (qres_skip). */
ALWAYS_INLINE size_t qres_dense(dstream *d, uint64_t *X, size_t wm, const qs_fmtinfo *f, const ft_dec_entry *tab,
				const qs_qtab *t, const int8_t *q, int empty, int zok, uint32_t zval, uint8_t *out,
				size_t i, size_t stop, const unsigned es)
{
	const uint32_t neg = 1u << (es * 8 - 1);
	for (; i < stop; i++) {
		int c = q[i];
		const qs_bucket *bk = &t->b[c + 128];
		uint64_t x = X[i & wm];
		uint32_t v;
		if (qres_skip(t, c, zok, zval, neg, &v)) {
			store(out + es * i, v, es);
			continue;
		}
		if (bk->n - 1u < RANS_UNIFORM_MAX)
			v = (c < 0 ? neg : 0) | (bk->lo + uniform(&x, d, bk->n, bk->step, 0)) << bk->shift;
		else
			v = qres_one(&x, d, f, tab, t, c, empty, 0, es);
		X[i & wm] = x;
		store(out + es * i, v, es);
	}
	return i;
}

/* Elements i .. i+63: the floats the codes alone determine are written,
 * branch-free; returns the mask of the others (dec_core.h, sparse groups). */
ALWAYS_INLINE uint64_t qres64_known(const qs_qtab *t, int zok, uint32_t zval, const int8_t *q, uint8_t *out,
				    size_t i, const unsigned es)
{
	uint64_t hard = 0;
	const uint32_t zm = zok ? ~0u : 0;
	for (unsigned k = 0; k < 64; k++) {
		int c = q[i + k];
		uint32_t z = zm & (0u - (c == 0));   /* masks, not ?: (a branch per element) */
		uint32_t v = (t->one[c + 128] & ~z) | (zval & z);
		store(out + es * (i + k), v, es);
		hard |= (uint64_t)(v == QS_QTAB_MANY) << k;
	}
	return hard;
}

/* One row's elements [i, end): sparse groups of 64, else dense as far as
 * the stream's batch allows, and checked one by one beyond it (the end of
 * the part). */
ALWAYS_INLINE size_t qres_row(dstream *d, uint64_t *X, size_t wm, const qs_fmtinfo *f, const ft_dec_entry *tab,
			      const qs_qtab *t, const int8_t *q, int empty, int zok, uint32_t zval, uint8_t *out,
			      size_t i, size_t end, unsigned *backoff, const unsigned es)
{
	while (i < end && !d->bad) {
		if (!(i & 63) && end - i >= 64 && !*backoff) {
			uint64_t hard = qres64_known(t, zok, zval, q, out, i, es);
			if (__builtin_popcountll(hard) <= QRES_SPARSE_MAX) {
				qres_hard(d, X, wm, f, tab, t, q, empty, out, i, hard, es);
				i += 64;
				continue;
			}
			*backoff = QRES_BACKOFF;
		}
		size_t lim = qres_dense_end(i, end, backoff);
		i = qres_dense(d, X, wm, f, tab, t, q, empty, zok, zval, out, i, i + batch(d, lim - i), es);
		for (; i < lim && !d->bad; i++)
			store(out + es * i, qres_one(&X[i & wm], d, f, tab, t, q[i], empty, 1, es), es);
	}
	return i;
}

ALWAYS_INLINE int qres_loop(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len,
			    const int8_t *q, size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales,
			    uint8_t *out, const unsigned es)
{
	rans_dec rd;
	dstream d;
	int empty;
	unsigned shift;
	if (open_float_part(f, p, len, s->tab, &shift, &empty, &rd, &d))
		return -1;
	uint32_t zval = 0, ztop = 0;
	int zfix = qres_zfix(f, s->tab, shift, empty, &zval, &ztop);
	unsigned backoff = 0;
	for (size_t i = 0; i < n && !d.bad;) {
		uint64_t r;
		size_t end = qs_row_end(e0, cols, i, n, &r);
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r], shift);
		i = qres_row(&d, rd.x, rd.ways - 1, f, s->tab, t, q, empty, zfix && ztop <= t->top0, zval, out, i, end,
			     &backoff, es);
	}
	return close_part(&rd, &d);
}

int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out)
{
	return f->esize == 2 ? qres_loop(s, f, p, len, q, n, e0, cols, scales, out, 2)
		: qres_loop(s, f, p, len, q, n, e0, cols, scales, out, 4);
}
