/*
 * float_dec.c - decoders for FSYM, QCODE and QRES parts (see codecs.h).
 *
 * Speed: the four rANS states live in locals and the loops run over groups
 * of four elements, one per state, so the CPU overlaps four independent
 * dependency chains.  Word reads are unchecked while at least a group's worth
 * of words remains and checked near the end of the part, so a damaged part
 * can never read outside it.  Every decoder also checks what a hostile part
 * could get wrong: table sums, symbols impossible under the row's bucket,
 * words running out, and the final states.
 */
#include <string.h>

#include "decode.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* One state's word stream. */
typedef struct dstate {
	const uint8_t *ptr, *end;
	int *bad;
} dstate;

/* checked is a compile-time constant at every call site */
ALWAYS_INLINE void renorm(uint64_t *x, dstate *d, const int checked)
{
	if (!checked) {
		/* branch-free: the refill is taken about once per six symbols, too
		 * irregular for the predictor; the word is always there to load */
		uint32_t w;
		memcpy(&w, d->ptr, 4);
		int need = *x < RANS_L;
		uint64_t refilled = *x << 32 | w;
		*x = need ? refilled : *x;
		d->ptr += need * 4;
		return;
	}
	if (*x < RANS_L) {
		uint32_t w = 0;
		if (!checked || d->ptr < d->end) {
			memcpy(&w, d->ptr, 4);
			d->ptr += 4;
		} else {
			*d->bad = 1;
		}
		*x = *x << 32 | w;
	}
}

ALWAYS_INLINE uint32_t sym(uint64_t *x, dstate *d, const ft_dec_entry *tab, const int checked)
{
	const ft_dec_entry *e = &tab[*x & (FT_M - 1)];
	*x = e->freq * (*x >> FT_BITS) + e->bias;
	renorm(x, d, checked);
	return e->sym;
}

ALWAYS_INLINE uint32_t bits(uint64_t *x, dstate *d, unsigned k, const int checked)
{
	uint32_t v = (uint32_t)(*x & ((1u << k) - 1));
	*x >>= k;
	renorm(x, d, checked);
	return v;
}

/* value in [0, n), 2 <= n <= 2^16 (see rans.h for the slot layout) */
ALWAYS_INLINE uint32_t uniform(uint64_t *x, dstate *d, uint32_t n, uint64_t step, const int checked)
{
	uint32_t slot = (uint32_t)(*x & 0xffff);
	uint32_t v = (uint32_t)(((uint64_t)(slot + 1) * n - 1) >> RANS_UNIFORM_BITS);
	uint32_t start = rans_uniform_start(v, step);
	uint32_t next = rans_uniform_start(v + 1, step);
	*x = (next - start) * (*x >> RANS_UNIFORM_BITS) + slot - start;
	renorm(x, d, checked);
	return v;
}

/* mirror of rans_put_count: any 1 <= n <= 2^32 */
ALWAYS_INLINE uint32_t count(uint64_t *x, dstate *d, uint64_t n, const int checked)
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
		*d->bad = 1;
	return v;
}

/* sign+exponent symbol then mantissa, under top, in units of 2^shift */
ALWAYS_INLINE uint32_t fsym(uint64_t *x, dstate *d, const qs_fmtinfo *f, const ft_dec_entry *tab, uint32_t top,
			    unsigned shift, const int checked)
{
	uint32_t first, sign;
	uint32_t s = sym(x, d, tab, checked);
	uint64_t n = qs_fsym_count_shifted(f, s, top, &shift, &first, &sign);
	if (!n) {
		*d->bad = 1;
		return 0;
	}
	return sign << (f->exp_bits + f->mant_bits) | (first + count(x, d, n, checked)) << shift;
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

static int open_part(const uint8_t *p, size_t len, uint32_t nsym, ft_dec_entry *tab, int *empty,
		     uint64_t x[4], dstate d[4], int *bad)
{
	size_t t = ft_read(p, len, nsym, tab, empty);
	rans_dec rd;
	if (!t || rans_dec_init(&rd, p + t, len - t))
		return -1;
	memcpy(x, rd.x, sizeof(rd.x));
	*bad = 0;
	for (int i = 0; i < 4; i++)
		d[i] = (dstate){ rd.ptr[i], rd.end[i], bad };
	return 0;
}

static int close_part(const uint64_t x[4], const dstate d[4])
{
	if (*d[0].bad)
		return -1;
	for (int i = 0; i < 4; i++)
		if (x[i] != RANS_L || d[i].ptr != d[i].end)
			return -1;
	return 0;
}

/* every state has at least `need` bytes of words left */
static inline int room(const dstate d[4], ptrdiff_t need)
{
	return d[0].end - d[0].ptr >= need && d[1].end - d[1].ptr >= need && d[2].end - d[2].ptr >= need
		&& d[3].end - d[3].ptr >= need;
}

/* Most word bytes one element can consume (f32 code 0: symbol + split
 * mantissa = 3 words). */
#define ELEM_WORD_BYTES (3 * 4)

/* ---- FSYM --------------------------------------------------------------- */

static void fsym_desc_build(const qs_fmtinfo *f, unsigned shift, fsym_desc *fd)
{
	for (uint32_t s = 0; s < f->nsym; s++) {
		unsigned sh = shift;
		uint32_t first, sign;
		uint64_t n = qs_fsym_count_shifted(f, s, f->magmask, &sh, &first, &sign);
		unsigned k = rans_log2_exact(n);
		fd[s] = (fsym_desc){ sign << (f->exp_bits + f->mant_bits), first, (uint32_t)n,
				     !n ? FD_BAD : n == 1 ? FD_ONE : k <= 16 ? FD_BITS : n <= RANS_UNIFORM_MAX ? FD_UNIFORM
				     : FD_COUNT, (uint8_t)(k <= 16 ? k : 0), (uint8_t)sh, 0 };
		if (fd[s].kind == FD_UNIFORM)
			fd[s].step = rans_step_make((uint32_t)n);
	}
}

/* fsym() under top = all ones, from the part's descriptors: the same
 * decoding, without re-deriving a symbol's range for every element */
ALWAYS_INLINE void fsym_one(uint64_t *x, dstate *d, const qs_fmtinfo *f, const fsym_desc *fd,
			    const ft_dec_entry *tab, uint8_t *out, const int checked)
{
	const fsym_desc *e = &fd[sym(x, d, tab, checked)];
	uint32_t v;
	switch (e->kind) {
	case FD_BITS: v = bits(x, d, e->k, checked); break;
	case FD_ONE: v = 0; break;
	case FD_UNIFORM: v = uniform(x, d, e->n, e->step, checked); break;
	case FD_COUNT: v = count(x, d, e->n, checked); break;
	default: *d->bad = 1; v = 0; break;
	}
	qs_store(f, out, e->kind == FD_BAD ? 0 : e->hi | (e->first + v) << e->shift);
}

int qs_dec_fsym(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n)
{
	uint64_t x[4];
	dstate d[4];
	int empty, bad;
	unsigned shift;
	if (read_shift(f, &p, &len, &shift) || open_part(p, len, f->nsym, s->tab, &empty, x, d, &bad) || (empty && n))
		return -1;
	fsym_desc_build(f, shift, s->fdesc);
	const fsym_desc *fd = s->fdesc;
	size_t i = 0, es = f->esize;
	uint64_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
	for (; i + 4 <= n && room(d, ELEM_WORD_BYTES); i += 4) {
		fsym_one(&x0, &d[0], f, fd, s->tab, out + i * es, 0);
		fsym_one(&x1, &d[1], f, fd, s->tab, out + (i + 1) * es, 0);
		fsym_one(&x2, &d[2], f, fd, s->tab, out + (i + 2) * es, 0);
		fsym_one(&x3, &d[3], f, fd, s->tab, out + (i + 3) * es, 0);
	}
	x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;
	for (; i < n && !bad; i++)
		fsym_one(&x[i & 3], &d[i & 3], f, fd, s->tab, out + i * es, 1);
	return close_part(x, d);
}

/* ---- QCODE -------------------------------------------------------------- */


int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	uint64_t x[4];
	dstate d[4];
	int empty, bad;
	if (open_part(p, len, 256, s->tab, &empty, x, d, &bad) || (empty && n))
		return -1;
	const ft_dec_entry *tab = s->tab;
	size_t i = 0;
	uint64_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
	for (;;) {
		/* a group reads at most one word per state: run unchecked for as
		 * many groups as every state has words left */
		size_t safe = (size_t)(d[0].end - d[0].ptr);
		for (int k = 1; k < 4; k++)
			if ((size_t)(d[k].end - d[k].ptr) < safe)
				safe = (size_t)(d[k].end - d[k].ptr);
		safe /= 4;
		if (safe > (n - i) / 4)
			safe = (n - i) / 4;
		if (safe < 8)
			break;
		for (size_t stop = i + 4 * safe; i < stop; i += 4) {
			q[i] = (int8_t)(sym(&x0, &d[0], tab, 0) - 128);
			q[i + 1] = (int8_t)(sym(&x1, &d[1], tab, 0) - 128);
			q[i + 2] = (int8_t)(sym(&x2, &d[2], tab, 0) - 128);
			q[i + 3] = (int8_t)(sym(&x3, &d[3], tab, 0) - 128);
		}
	}
	x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;
	for (; i < n && !bad; i++)
		q[i] = (int8_t)(sym(&x[i & 3], &d[i & 3], tab, 1) - 128);
	return close_part(x, d);
}

/* ---- QRES --------------------------------------------------------------- */

ALWAYS_INLINE void store(uint8_t *out, uint32_t v, const unsigned es)
{
	if (es == 2) {
		uint16_t h = (uint16_t)v;
		memcpy(out, &h, 2);
	} else {
		memcpy(out, &v, 4);
	}
}

ALWAYS_INLINE void qres_one(uint64_t *x, dstate *d, const qs_fmtinfo *f, const ft_dec_entry *tab, const qs_qtab *t,
			    int q, int empty, uint8_t *out, const int checked, const unsigned es)
{
	uint32_t v;
	if (!q) {
		if (empty)
			*d->bad = 1;
		v = fsym(x, d, f, tab, t->top0, t->shift, checked);
	} else {
		const qs_bucket *b = &t->b[q + 128];
		uint32_t idx;
		if (b->n > 1 && b->n <= RANS_UNIFORM_MAX)
			idx = uniform(x, d, b->n, b->step, checked);
		else if (b->n > 1)
			idx = count(x, d, b->n, checked);
		else {
			idx = 0;
			if (!b->n)
				*d->bad = 1;   /* a code no float of this row can have */
		}
		v = (q < 0 ? 1u << (es * 8 - 1) : 0) | (b->lo + idx) << b->shift;
	}
	store(out, v, es);
}

/* The common case of one state: code != 0 with 2 <= n <= 2^16, no bounds
 * check (the caller made sure words remain), state and pointer in registers. */
#define QRES_FAST(x, p, b, sign, out)                                                           \
	do {                                                                                     \
		uint32_t slot_ = (uint32_t)((x) & 0xffff);                                        \
		uint32_t v_ = (uint32_t)(((uint64_t)(slot_ + 1) * (b)->n - 1) >> RANS_UNIFORM_BITS); \
		uint32_t st_ = rans_uniform_start(v_, (b)->step);                                 \
		uint32_t nx_ = rans_uniform_start(v_ + 1, (b)->step);                             \
		(x) = (nx_ - st_) * ((x) >> RANS_UNIFORM_BITS) + slot_ - st_;                     \
		uint32_t w_;                                                                     \
		memcpy(&w_, (p), 4);                                                             \
		int need_ = (x) < RANS_L;                                                        \
		uint64_t r_ = (x) << 32 | w_;                                                    \
		(x) = need_ ? r_ : (x);                                                          \
		(p) += need_ * 4;                                                                \
		store((out), (sign) | ((b)->lo + v_) << (b)->shift, es);                         \
	} while (0)

static inline int fast_bucket(const qs_qtab *t, int q)
{
	return q && t->b[q + 128].n - 2u <= RANS_UNIFORM_MAX - 2u;
}

ALWAYS_INLINE int qres_loop(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len,
			    const int8_t *q, size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales,
			    uint8_t *out, const unsigned es)
{
	uint64_t x[4];
	dstate d[4];
	int empty, bad;
	uint64_t row0 = e0 / cols;
	const uint32_t neg = 1u << (es * 8 - 1);
	unsigned shift;
	if (read_shift(f, &p, &len, &shift) || open_part(p, len, f->nsym, s->tab, &empty, x, d, &bad))
		return -1;
	const ft_dec_entry *tab = s->tab;
	for (size_t i = 0; i < n && !bad;) {
		uint64_t r = (e0 + i) / cols;
		size_t end = (size_t)((r + 1) * cols - e0);
		if (end > n)
			end = n;
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r - row0], shift);
		for (; i < end && (i & 3); i++)
			qres_one(&x[i & 3], &d[i & 3], f, tab, t, q[i], empty, out + i * es, 1, es);
		while (i + 4 <= end && room(d, ELEM_WORD_BYTES)) {
			uint64_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
			const uint8_t *p0 = d[0].ptr, *p1 = d[1].ptr, *p2 = d[2].ptr, *p3 = d[3].ptr;
			/* runs of groups whose four codes all take the fast path */
			for (; i + 4 <= end && p0 + 4 <= d[0].end && p1 + 4 <= d[1].end && p2 + 4 <= d[2].end
			       && p3 + 4 <= d[3].end; i += 4) {
				int a0 = q[i], a1 = q[i + 1], a2 = q[i + 2], a3 = q[i + 3];
				if (!(fast_bucket(t, a0) & fast_bucket(t, a1) & fast_bucket(t, a2) & fast_bucket(t, a3)))
					break;
				QRES_FAST(x0, p0, &t->b[a0 + 128], a0 < 0 ? neg : 0, out + i * es);
				QRES_FAST(x1, p1, &t->b[a1 + 128], a1 < 0 ? neg : 0, out + (i + 1) * es);
				QRES_FAST(x2, p2, &t->b[a2 + 128], a2 < 0 ? neg : 0, out + (i + 2) * es);
				QRES_FAST(x3, p3, &t->b[a3 + 128], a3 < 0 ? neg : 0, out + (i + 3) * es);
			}
			x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;
			d[0].ptr = p0; d[1].ptr = p1; d[2].ptr = p2; d[3].ptr = p3;
			if (i + 4 > end)
				break;
			/* a group with a rare element (code 0, tiny or huge bucket) */
			for (int k = 0; k < 4; k++, i++)
				qres_one(&x[k], &d[k], f, tab, t, q[i], empty, out + i * es, 1, es);
		}
		for (; i < end; i++)
			qres_one(&x[i & 3], &d[i & 3], f, tab, t, q[i], empty, out + i * es, 1, es);
	}
	return close_part(x, d);
}

int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out)
{
	return f->esize == 2 ? qres_loop(s, f, p, len, q, n, e0, cols, scales, out, 2)
		: qres_loop(s, f, p, len, q, n, e0, cols, scales, out, 4);
}
