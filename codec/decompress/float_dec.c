/* float_dec.c - decoders for FSYM, QCODE and QRES parts (see codecs.h).
 * Every decoder checks what a hostile part could get wrong: table sums,
 * symbols impossible under the row's bucket, words running out, and the
 * final rANS states. */
#include <string.h>

#include "../common/codecs.h"

/* table + stream header shared by the three codecs */
static int open_part(qs_dec_scratch *s, const uint8_t *p, size_t len, uint32_t nsym,
		     int *empty, rans_dec *d)
{
	size_t t = ft_read(p, len, nsym, s->tab, empty);
	if (!t)
		return -1;
	return rans_dec_init(d, p + t, len - t);
}

static inline uint32_t get_sym(rans_dec *d, int way, const ft_dec_entry *tab)
{
	const ft_dec_entry *en = &tab[d->x[way] & (FT_M - 1)];
	d->x[way] = en->freq * (d->x[way] >> FT_BITS) + en->bias;
	rans_renorm(d, way);
	return en->sym;
}

/* sign+exponent symbol then mantissa; 0 or -1 if impossible under top */
static inline int get_fsym(rans_dec *d, int way, const qs_fmtinfo *f, const ft_dec_entry *tab,
			   uint32_t top, uint32_t *bits)
{
	uint32_t base, sign;
	int bad = 0;
	uint32_t sym = get_sym(d, way, tab);
	uint64_t count = qs_fsym_count(f, sym, top, &base, &sign);
	if (!count)
		return -1;
	uint32_t m = rans_get_count(d, way, count, &bad);
	*bits = sign << (f->exp_bits + f->mant_bits) | (base + m);
	return bad ? -1 : 0;
}

int qs_dec_fsym(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n)
{
	rans_dec d;
	int empty;
	if (open_part(s, p, len, f->nsym, &empty, &d) || (empty && n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint32_t bits;
		if (get_fsym(&d, (int)(i & 3), f, s->tab, f->magmask, &bits))
			return -1;
		qs_store(f, out + i * f->esize, bits);
	}
	return rans_dec_done(&d);
}

int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	rans_dec d;
	int empty;
	if (open_part(s, p, len, 256, &empty, &d) || (empty && n))
		return -1;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		q[i] = (int8_t)(get_sym(&d, 0, s->tab) - 128);
		q[i + 1] = (int8_t)(get_sym(&d, 1, s->tab) - 128);
		q[i + 2] = (int8_t)(get_sym(&d, 2, s->tab) - 128);
		q[i + 3] = (int8_t)(get_sym(&d, 3, s->tab) - 128);
	}
	for (; i < n; i++)
		q[i] = (int8_t)(get_sym(&d, (int)(i & 3), s->tab) - 128);
	return rans_dec_done(&d);
}

int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out)
{
	rans_dec d;
	int empty, bad = 0;
	uint32_t signbit = 1u << (f->exp_bits + f->mant_bits);
	uint64_t row0 = e0 / cols;
	if (open_part(s, p, len, f->nsym, &empty, &d))
		return -1;
	for (size_t i = 0; i < n;) {
		uint64_t r = (e0 + i) / cols;
		size_t end = (size_t)((r + 1) * cols - e0);
		if (end > n)
			end = n;
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r - row0]);
		for (; i < end; i++) {
			int way = (int)(i & 3);
			uint32_t bits;
			if (!q[i]) {
				if (empty || get_fsym(&d, way, f, s->tab, t->top0, &bits))
					return -1;
			} else {
				const qs_bucket *b = &t->b[q[i] + 128];
				uint32_t idx;
				if (b->n > RANS_UNIFORM_MAX)
					idx = rans_get_count(&d, way, b->n, &bad);
				else if (b->n > 1)
					idx = rans_get_uniform(&d, way, b->n, b->magic);
				else if (b->n == 1)
					idx = 0;
				else
					return -1;   /* a code that no float of this row can have */
				bits = (q[i] < 0 ? signbit : 0) | (b->lo + idx);
			}
			qs_store(f, out + i * f->esize, bits);
		}
	}
	return bad ? -1 : rans_dec_done(&d);
}
