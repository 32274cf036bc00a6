/*
 * float_enc_avx512.c - the FSYM encoder loop for 16-bit floats in vectors of
 * eight states, on CPUs with AVX-512 F/DQ/VL/BW (chosen by name through
 * qs_enc_fsym_loop_for: the set the decoders use).
 *
 * Elements j .. j+7 (j a multiple of 8) use eight consecutive states; the
 * portable loop encodes them from j+7 down to j, each step independent of
 * the others but for the shared word stream.  A state that must shrink
 * before its step gives its low word to the stream, which grows downwards:
 * j+7's word first, so that the stream holds the words of the group in
 * element order, which is what a masked compress-store of the lanes that
 * shrink writes below the pointer.  The division by the symbol's frequency
 * is done in doubles (see enc8), and every lane gets the portable loop's
 * state, so the part is byte for byte the same.  Groups holding a subnormal
 * (a symbol followed by count(n)) are encoded by the portable step.
 */
#include <immintrin.h>

#include "encode.h"

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512dq,avx512vl,avx512bw")))

/* fsym_vec[y]: start | freq << 16 | first << 32 | w << 48 | shift << 56,
 * w = SLOW for a symbol that is not one joint step */
#define SLOW 0xff

static void vec_build(qs_enc_scratch *s, const qs_fmtinfo *f)
{
	for (uint32_t y = 0; y < f->nsym; y++) {
		const fsym_enc_desc *d = &s->sdesc[y];
		int in = y >= s->ft.first && y < s->ft.first + s->ft.count && s->ft.freq[y];
		uint64_t w = in && d->w <= RANS_JOINT_MAX_BITS && d->first <= 0xffff ? d->w : SLOW;
		s->fsym_vec[y] = in ? (uint64_t)s->ft.start[y] | (uint64_t)s->ft.freq[y] << 16 | (uint64_t)d->first << 32
			| w << 48 | (uint64_t)d->shift << 56 : (uint64_t)SLOW << 48;
	}
}

/* Elements j .. j+7, the stream's pointer in *PTR (a local of the loop:
 * kept in e, it would be stored and loaded again by every group); 0,
 * touching nothing, if one of them is not a joint step or the stream has
 * no room for eight words. */
AVX512_INLINE int enc8(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t j, rans_enc *e,
		       uint32_t **ptr)
{
	if (*ptr - e->lim < 8)
		return 0;
	const __m512i m16 = _mm512_set1_epi64(0xffff), m8 = _mm512_set1_epi64(0xff);
	__m512i b = _mm512_cvtepu16_epi64(_mm_loadu_si128((const __m128i *)(in + 2 * j)));
	/* sign << e | E for every float but subnormals, which take the slow path */
	__m512i sym = _mm512_srli_epi64(b, f->mant_bits);
	__mmask8 sub = _mm512_testn_epi64_mask(b, _mm512_set1_epi64((long long)(f->magmask & ~((1u << f->mant_bits) - 1))))
		& _mm512_test_epi64_mask(b, _mm512_set1_epi64(f->magmask));
	if (sub)
		return 0;
	__m512i d = _mm512_i64gather_epi64(sym, (const void *)s->fsym_vec, 8);
	__m512i w = _mm512_and_si512(_mm512_srli_epi64(d, 48), m8);
	if (_mm512_cmpeq_epi64_mask(w, _mm512_set1_epi64(SLOW)))
		return 0;
	__m512i freq = _mm512_and_si512(_mm512_srli_epi64(d, 16), m16);
	__m512i v = _mm512_sub_epi64(_mm512_srlv_epi64(_mm512_and_si512(b, _mm512_set1_epi64(f->magmask)),
						       _mm512_srli_epi64(d, 56)),
				     _mm512_and_si512(_mm512_srli_epi64(d, 32), m16));
	__m512i start = _mm512_add_epi64(_mm512_slli_epi64(v, FT_BITS), _mm512_and_si512(d, m16));
	__m512i bits = _mm512_add_epi64(w, _mm512_set1_epi64(FT_BITS));
	uint64_t *xs = &e->x[j & (e->ways - 1)];
	__m512i x = _mm512_loadu_si512(xs);
	/* xmax = ((RANS_L >> bits) << 32) freq = freq << (63 - bits) */
	__m512i xmax = _mm512_sllv_epi64(freq, _mm512_sub_epi64(_mm512_set1_epi64(63), bits));
	__mmask8 need = _mm512_cmpge_epu64_mask(x, xmax);
	unsigned cnt = (unsigned)__builtin_popcount(need);
	_mm256_mask_compressstoreu_epi32(*ptr - cnt, need, _mm512_cvtepi64_epi32(x));
	*ptr -= cnt;
	x = _mm512_mask_srli_epi64(x, need, x, 32);
	/* q = floor(x / freq) < 2^(63 - bits) <= 2^51, so x < 2^51 freq: the
	 * double quotient is within 1 of it (x's rounding is below freq/4,
	 * the quotient's below 1/4); one step each way makes it exact */
	__m512i q = _mm512_cvttpd_epu64(_mm512_div_pd(_mm512_cvtepu64_pd(x), _mm512_cvtepu64_pd(freq)));
	__m512i r = _mm512_sub_epi64(x, _mm512_mullo_epi64(q, freq));
	__mmask8 lo = _mm512_cmplt_epi64_mask(r, _mm512_setzero_si512());
	q = _mm512_mask_sub_epi64(q, lo, q, _mm512_set1_epi64(1));
	r = _mm512_mask_add_epi64(r, lo, r, freq);
	__mmask8 hi = _mm512_cmpge_epi64_mask(r, freq);
	q = _mm512_mask_add_epi64(q, hi, q, _mm512_set1_epi64(1));
	r = _mm512_mask_sub_epi64(r, hi, r, freq);
	_mm512_storeu_si512(xs, _mm512_add_epi64(_mm512_add_epi64(_mm512_sllv_epi64(q, bits), r), start));
	return 1;
}

AVX512 void qs_enc_fsym_loop_avx512(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, rans_enc *e)
{
	if (f->esize != 2 || e->ways < 8) {
		qs_enc_fsym_loop(s, f, in, n, e);
		return;
	}
	vec_build(s, f);
	size_t i = n;
	for (; i > (n & ~(size_t)7);)   /* the last, partial group */
		qs_enc_fsym_one(s, f, in, --i, e);
	uint32_t *ptr = e->ptr;
	for (; i; i -= 8)
		if (!enc8(s, f, in, i - 8, e, &ptr)) {
			e->ptr = ptr;
			for (size_t k = i; k-- > i - 8;)
				qs_enc_fsym_one(s, f, in, k, e);
			ptr = e->ptr;
		}
	e->ptr = ptr;
}
