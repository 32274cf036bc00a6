/* float_enc.c - encoders for FSYM, QCODE and QRES parts (see codecs.h). */
#include <stdlib.h>
#include <string.h>

#include "../common/internal.h"
#include "encode.h"

rans_recip *qs_recip_table_new(void)
{
	rans_recip *r = malloc(sizeof(*r) * (RANS_UNIFORM_MAX + 1));
	if (!r)
		return NULL;
	for (uint32_t d = 0; d <= RANS_UNIFORM_MAX; d++)
		r[d] = rans_recip_make(d);
	return r;
}

qs_enc_scratch *qs_enc_scratch_new(size_t max_elems, const rans_recip *recip)
{
	qs_enc_scratch *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max_elems = max_elems;
	/* at most 3 words for each element */
	s->n_words = 3 * max_elems + 8;
	s->words = malloc(s->n_words * 4);
	if (!s->words) {
		free(s);
		return NULL;
	}
	s->recip = recip;
	qs_qtab_cache_reset(&s->qcache);
	qs_enc_lg_init(s->lg8);
	s->quantise = qs_quantise_scalar;
	s->fsym_loop = qs_enc_fsym_loop;
	return s;
}

void qs_enc_scratch_free(qs_enc_scratch *s)
{
	if (s) {
		free(s->words);
		free(s);
	}
}

/* tag + header (HLEN bytes: the shift byte, QTUP's tuple) + table + stream,
 * or RAW when that is not smaller than raw_len. */
static size_t emit(uint8_t *out, int tag, const uint8_t *hdr, size_t hlen, const ft_enc *ft, rans_enc *e,
		   const void *raw, size_t raw_len)
{
	size_t h = 1 + hlen;
	size_t tlen = ft ? ft_write(ft, out + h) : 0;
	size_t slen = raw_len > tlen + h ? rans_enc_finish(e, out + h + tlen, raw_len - tlen - h + 1) : 0;
	if (slen && h + tlen + slen < 1 + raw_len) {
		out[0] = (uint8_t)tag;
		if (hlen)
			memcpy(out + 1, hdr, hlen);
		return h + tlen + slen;
	}
	out[0] = QS_CODEC_RAW;
	memcpy(out + 1, raw, raw_len);
	return 1 + raw_len;
}

/* A float as a sign+exponent symbol and mantissa under top (QRES code 0). */
static inline void put_fsym(rans_enc *e, unsigned way, const qs_fmtinfo *f, const ft_enc *ft,
			    uint32_t bits, uint32_t top, unsigned shift)
{
	uint32_t base, first, sign;
	uint32_t sym = qs_fsym(f, bits, &base);
	uint64_t count = qs_fsym_count_shifted(f, sym, top, &shift, &first, &sign);
	/* a table of one symbol of one magnitude (the exact zeros of ternary and
	 * sparse rows): x = 2^12 (x >> 12) + slot, the step that leaves the
	 * state as it is and takes no word (the decoders' qres_skip) */
	if (count == 1 && ft->freq[sym] == FT_M)
		return;
	qs_enc_put_sym_mant(e, way, ft, sym, ((bits & f->magmask) >> shift) - first, count, rans_log2_exact(count));
}

/* The portable FSYM loop: every element, backwards (rANS encodes in reverse). */
void qs_enc_fsym_loop(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, rans_enc *e)
{
	for (size_t i = n; i-- > 0;)
		qs_enc_fsym_one(s, f, in, i, e);
}

/* An FSYM part's sign+exponent symbol counts (qs_fsym) in four histograms
 * (runs of one symbol, a tensor's few exponents, would otherwise wait on
 * the previous increment of one counter), and the OR of its normal floats
 * (qs_shift_acc).  16-bit floats: the symbol of a normal float or zero is
 * its top bits, and f's fields are copied to locals, which the counters
 * could otherwise alias. */
static uint32_t count16(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint32_t (*c4)[FT_MAX_SYMS])
{
	const unsigned mb = f->mant_bits, sb = f->mant_bits + f->exp_bits;
	const uint32_t mag = f->magmask, sub = 2u << f->exp_bits;
	uint32_t mor = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (unsigned k = 0; k < 4; k++) {
			uint32_t b = rd16(in + 2 * (i + k)), m = b & mag, e = m >> mb;
			c4[k][e || !m ? b >> mb : sub + (b >> sb)]++;
			mor |= e ? b : 0;
		}
	for (; i < n; i++) {
		uint32_t b = rd16(in + 2 * i), m = b & mag, e = m >> mb;
		c4[0][e || !m ? b >> mb : sub + (b >> sb)]++;
		mor |= e ? b : 0;
	}
	return mor;
}

static uint32_t count32(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint32_t (*c4)[FT_MAX_SYMS])
{
	uint32_t base, mor = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t bits = qs_load(f, in + i * f->esize);
		c4[i & 3][qs_fsym(f, bits, &base)]++;
		mor = qs_shift_acc(f, mor, bits);
	}
	return mor;
}

qs_enc_fsym_fn qs_enc_fsym_loop_for(const char *set)
{
	return set && !strcmp(set, "avx512") ? qs_enc_fsym_loop_avx512 : qs_enc_fsym_loop;
}

size_t qs_enc_fsym(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint8_t *out)
{
	uint32_t (*c4)[FT_MAX_SYMS] = s->counts4;
	memset(c4, 0, sizeof(s->counts4[0]) * 4);
	uint32_t mant_or = f->esize == 2 ? count16(f, in, n, c4) : count32(f, in, n, c4);
	for (uint32_t y = 0; y < f->nsym; y++)
		s->counts[y] = c4[0][y] + c4[1][y] + c4[2][y] + c4[3][y];
	memset(s->counts + f->nsym, 0, sizeof(s->counts) - f->nsym * sizeof(s->counts[0]));
	unsigned shift = qs_shift_of(f, mant_or);
	ft_build(s->counts, f->nsym, &s->ft);
	/* what each element needs, once per present symbol */
	for (uint32_t y = s->ft.first; y < s->ft.first + s->ft.count; y++) {
		unsigned sh = shift;
		uint32_t sign;
		s->sdesc[y].n = qs_fsym_count_shifted(f, y, f->magmask, &sh, &s->sdesc[y].first, &sign);
		s->sdesc[y].w = rans_log2_exact(s->sdesc[y].n);
		s->sdesc[y].shift = sh;
	}
	rans_enc e;
	rans_enc_init(&e, s->words, s->n_words, rans_ways_for(n), s->recip);
	s->fsym_loop(s, f, in, n, &e);
	uint8_t sh = (uint8_t)shift;
	return emit(out, QS_CODEC_FSYM, &sh, 1, &s->ft, &e, in, n * f->esize);
}

/* QTUP's tuple length for these code counts, or 1 for QCODE: the longest
 * tuple whose estimated cost (sampled, under the table the coder would
 * build) is within QTUP_SLACK of the cheapest choice.  One rANS step then
 * decodes m codes: on ternary rows m = 5. */
#define QTUP_SLACK 1.005
#define QTUP_SAMPLE 8   /* one tuple in 8 */
static unsigned qtup_choose(qs_enc_scratch *s, const int8_t *q, size_t n, const uint8_t *idx, unsigned k)
{
	double cost[QS_QTUP_MAX_M + 1], best;
	unsigned top = 1;
	cost[1] = best = qs_enc_table_bits(s->counts, 256, &s->ft) + qs_enc_part_bits(n, s->counts, 256);
	for (unsigned m = 2, km = k * k; m <= QS_QTUP_MAX_M && km <= QS_QTUP_MAX_SYMS && n >= 64 * m; m++, km *= k) {
		uint32_t *tc = s->tcounts;
		memset(tc, 0, km * sizeof(*tc));
		size_t nt = n / m, seen = 0;
		for (size_t j = 0; j < nt; j += QTUP_SAMPLE, seen++) {
			uint32_t t = 0;
			for (unsigned i = m; i-- > 0;)
				t = t * k + idx[q[j * m + i] + 128];
			tc[t]++;
		}
		cost[m] = qs_enc_table_bits(tc, km, &s->ft) * ((double)nt / (double)seen) + qs_enc_part_bits(nt, tc, km)
			+ 8.0 * (2 + k);
		best = cost[m] < best ? cost[m] : best;
		top = m;
	}
	while (top > 1 && cost[top] > best * QTUP_SLACK)
		top--;
	return top;
}

/* The INT8 codes of a chunk: QTUP when it uses at most 16 different codes
 * and tuples are about as small, else QCODE. */
size_t qs_enc_qcode(qs_enc_scratch *s, const int8_t *q, size_t n, uint8_t *out)
{
	/* four histograms, as in count16: ternary rows are 88% one code */
	uint32_t (*c4)[FT_MAX_SYMS] = s->counts4;
	memset(c4, 0, sizeof(s->counts4[0]) * 4);
	size_t at = 0;
	for (; at + 4 <= n; at += 4)
		for (unsigned k = 0; k < 4; k++)
			c4[k][q[at + k] + 128]++;
	for (; at < n; at++)
		c4[0][q[at] + 128]++;
	memset(s->counts, 0, sizeof(s->counts));
	for (unsigned c = 0; c < 256; c++)
		s->counts[c] = c4[0][c] + c4[1][c] + c4[2][c] + c4[3][c];
	uint8_t hdr[2 + 16], idx[256] = { 0 };
	unsigned k = 0;
	for (unsigned c = 0; c < 256 && k <= 16; c++)
		if (s->counts[c]) {
			if (k < 16)
				hdr[2 + k] = (uint8_t)c;
			idx[c] = (uint8_t)k++;
		}
	unsigned m = k >= 1 && k <= 16 ? qtup_choose(s, q, n, idx, k) : 1;
	rans_enc e;
	if (m == 1) {
		ft_build(s->counts, 256, &s->ft);
		unsigned wm = rans_ways_for(n) - 1;
		rans_enc_init(&e, s->words, s->n_words, wm + 1, s->recip);
		for (size_t i = n; i-- > 0;) {
			uint32_t sym = (uint32_t)(q[i] + 128);
			rans_put(&e, (unsigned)(i & wm), s->ft.start[sym], s->ft.freq[sym], FT_BITS);
		}
		return emit(out, QS_CODEC_QCODE, NULL, 0, &s->ft, &e, q, n);
	}
	/* tuple j holds codes j*m .. j*m+m-1, the first in the lowest digit;
	 * the last one's digits past n are 0 */
	size_t nt = (n + m - 1) / m;
	uint32_t km = 1, *tup = (uint32_t *)s->words + s->n_words - nt;   /* the top of the word buffer */
	for (unsigned i = 0; i < m; i++)
		km *= k;
	memset(s->counts, 0, km * sizeof(*s->counts));
	for (size_t j = 0; j < nt; j++) {
		uint32_t t = 0;
		for (unsigned i = m; i-- > 0;)
			t = t * k + (j * m + i < n ? idx[q[j * m + i] + 128] : 0);
		tup[j] = t;
		s->counts[t]++;
	}
	ft_build(s->counts, km, &s->ft);
	unsigned wm = rans_ways_for(nt) - 1;
	rans_enc_init(&e, s->words, s->n_words - nt, wm + 1, s->recip);
	for (size_t j = nt; j-- > 0;)
		rans_put(&e, (unsigned)(j & wm), s->ft.start[tup[j]], s->ft.freq[tup[j]], FT_BITS);
	hdr[0] = (uint8_t)m;
	hdr[1] = (uint8_t)k;
	return emit(out, QS_CODEC_QTUP, hdr, 2 + k, &s->ft, &e, q, n);
}

size_t qs_enc_qres(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0,
		   uint64_t cols, const uint32_t *scales, const int8_t *q, unsigned shift, uint8_t *out)
{
	uint32_t signbit = 1u << (f->exp_bits + f->mant_bits), base;
	uint64_t row0 = e0 / cols;
	/* the symbols of the code-0 floats; the others count in a slot past the
	 * alphabet (no branch: on ternary rows one in eight would mispredict) */
	memset(s->counts, 0, sizeof(s->counts));
	for (size_t i = 0; i < n; i++)
		s->counts[q[i] ? FT_MAX_SYMS - 1 : qs_fsym(f, qs_load(f, in + i * f->esize), &base)]++;
	s->counts[FT_MAX_SYMS - 1] = 0;
	ft_build(s->counts, f->nsym, &s->ft);
	/* every code-0 float one magnitude of one symbol (the exact zeros of
	 * ternary and sparse rows): each is a step that leaves the state as it
	 * is (put_fsym), known without looking at the symbol */
	int zskip = 0;
	for (uint32_t y = s->ft.first; y < s->ft.first + s->ft.count; y++) {
		unsigned sh = shift;
		uint32_t first, sign;
		zskip |= s->ft.freq[y] == FT_M && qs_fsym_count_shifted(f, y, f->magmask, &sh, &first, &sign) == 1;
	}
	/* pass 2: backwards, as rANS requires */
	rans_enc e;
	unsigned wm = rans_ways_for(n) - 1;
	rans_enc_init(&e, s->words, s->n_words, wm + 1, s->recip);
	for (size_t i = n; i > 0;) {
		uint64_t r = (e0 + i - 1) / cols;
		size_t begin = r * cols > e0 ? (size_t)(r * cols - e0) : 0;
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r - row0], shift);
		for (; i > begin; i--) {
			size_t k = i - 1;
			unsigned way = (unsigned)(k & wm);
			uint32_t bits = qs_load(f, in + k * f->esize);
			if (!q[k]) {
				if ((bits & f->magmask) > t->top0)
					return 0;
				if (!zskip)
					put_fsym(&e, way, f, &s->ft, bits, t->top0, shift);
				continue;
			}
			const qs_bucket *b = &t->b[q[k] + 128];
			uint32_t mag = (bits & f->magmask) >> b->shift, idx = mag - b->lo;
			if (((bits & signbit) != 0) != (q[k] < 0) || mag < b->lo || idx >= b->n)
				return 0; /* bucket tables disagree with the quantiser */
			if (b->n > RANS_UNIFORM_MAX)
				rans_put_count(&e, way, idx, b->n);
			else if (b->n > 1)
				rans_put_uniform(&e, way, idx, b->step);
		}
	}
	uint8_t sh = (uint8_t)shift;
	return emit(out, QS_CODEC_QRES, &sh, 1, &s->ft, &e, in, n * f->esize);
}
