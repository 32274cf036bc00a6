/*
 * quantise_avx512.c - quantise.c's quantiser sixteen floats at a time (AVX-512
 * F/VL/BW; dispatch.c checks cpuid).  Every step is the scalar one on sixteen
 * lanes, so the codes are the same: the float converted exactly to binary32
 * (BF16 by a shift, F16 by vcvtph2ps), one IEEE division by the row scale,
 * the clamp to +-200, rounding by adding and subtracting 1.5 * 2^23, then
 * a saturating narrow to int8, which is the clamp to [-128, 127].
 */
#include <immintrin.h>

#include "quantise.h"

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw")))

AVX512 static void row_avx512(const qs_fmtinfo *f, const uint8_t *in, size_t n, float sc, int8_t *q)
{
	const __m512 s = _mm512_set1_ps(sc), lo = _mm512_set1_ps(-200.0f), hi = _mm512_set1_ps(200.0f);
	const __m512 big = _mm512_set1_ps(12582912.0f);
	const __m512i magmask = _mm512_set1_epi32((int)f->magmask), magmax = _mm512_set1_epi32((int)f->magmax);
	for (size_t j = 0; j < n; j += 16) {
		__mmask16 m = n - j >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - j)) - 1);
		__m512i b;
		__m512 v;
		if (f->esize == 4) {
			b = _mm512_maskz_loadu_epi32(m, in + 4 * j);
			v = _mm512_castsi512_ps(b);
		} else {
			__m256i h = _mm256_maskz_loadu_epi16(m, in + 2 * j);
			b = _mm512_cvtepu16_epi32(h);
			v = f->fmt == QS_FMT_BF16 ? _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)) : _mm512_cvtph_ps(h);
		}
		__mmask16 fin = _mm512_cmple_epu32_mask(_mm512_and_si512(b, magmask), magmax);
		__m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(v, s), lo), hi);
		t = _mm512_sub_ps(_mm512_add_ps(t, big), big);
		__m512i c = _mm512_maskz_mov_epi32(fin, _mm512_cvttps_epi32(t));
		_mm512_mask_cvtsepi32_storeu_epi8(q + j, m, c);
	}
}

void qs_quantise_avx512(const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0, uint64_t cols,
			const uint32_t *scales, int8_t *q)
{
	qs_quantise_rows(f, in, n, e0, cols, scales, q, row_avx512);
}
