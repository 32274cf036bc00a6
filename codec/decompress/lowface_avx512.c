/*
 * lowface_avx512.c - the INT4 view's group maxima and packing (lowface.c's
 * qs_low_max4 / qs_low_pack4) with AVX-512 F/BW: a group of 128 codes is
 * two byte vectors, its codes eight vectors of sixteen floats.  Identical
 * bytes to the portable kernels: the same correctly rounded division and
 * round-half-even (test_lowview compares them).
 */
#include <immintrin.h>
#include <stddef.h>

#include "qstore.h"
#include "decode.h"

#define AVX512 __attribute__((target("avx512f,avx512bw")))

/* The largest of 64 unsigned bytes. */
static inline AVX512 unsigned max_u8(__m512i v)
{
	__m256i a = _mm256_max_epu8(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
	__m128i b = _mm_max_epu8(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
	b = _mm_max_epu8(b, _mm_srli_si128(b, 8));
	b = _mm_max_epu8(b, _mm_srli_si128(b, 4));
	b = _mm_max_epu8(b, _mm_srli_si128(b, 2));
	b = _mm_max_epu8(b, _mm_srli_si128(b, 1));
	return (unsigned)_mm_cvtsi128_si32(b) & 0xff;
}

AVX512 void qs_low_max4_avx512(const int8_t *q, size_t ne, uint8_t *gm)
{
	for (size_t g = 0; g < ne / QS_INT4_GROUP; g++) {
		/* |-128| is 0x80 as a byte: 128 read unsigned */
		__m512i a = _mm512_abs_epi8(_mm512_loadu_si512(q + g * QS_INT4_GROUP));
		__m512i b = _mm512_abs_epi8(_mm512_loadu_si512(q + g * QS_INT4_GROUP + 64));
		gm[g] = (uint8_t)max_u8(_mm512_max_epu8(a, b));
	}
}

/* 16 codes: rne(q * 7 / m) + 8 as bytes. */
static inline AVX512 __m128i codes16(const int8_t *x, __m512 k, __m512 m)
{
	__m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x)));
	__m512 t = _mm512_roundscale_ps(_mm512_div_ps(_mm512_mul_ps(v, k), m), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(t), _mm512_set1_epi32(8)));
}

AVX512 void qs_low_pack4_avx512(const int8_t *q, size_t ne, const uint8_t *gm, uint8_t *out)
{
	for (size_t g = 0; g < ne / QS_INT4_GROUP; g++) {
		const int8_t *x = q + g * QS_INT4_GROUP;
		__m512 k = _mm512_set1_ps(gm[g] ? 7.0f : 0.0f), m = _mm512_set1_ps(gm[g] ? (float)gm[g] : 1.0f);
		for (int h = 0; h < 2; h++) {   /* 64 codes -> 32 bytes */
			__m512i b = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(codes16(x + 64 * h + 16, k, m),
												codes16(x + 64 * h, k, m))),
						       _mm256_set_m128i(codes16(x + 64 * h + 48, k, m), codes16(x + 64 * h + 32, k, m)), 1);
			/* byte pairs (even, odd) as 16-bit lanes: even | odd << 4 */
			__m512i w = _mm512_or_si512(_mm512_and_si512(b, _mm512_set1_epi16(0x00ff)),
						    _mm512_srli_epi16(b, 4));
			_mm256_storeu_si256((__m256i *)(out + g * QS_INT4_GROUP / 2 + 32 * h), _mm512_cvtepi16_epi8(
				_mm512_and_si512(w, _mm512_set1_epi16(0x00ff))));
		}
	}
}
