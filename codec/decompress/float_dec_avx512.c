/*
 * float_dec_avx512.c - QCODE, and 16-bit FSYM and QRES, decoders for CPUs with
 * AVX-512 F/DQ/VL/BW (dispatch.c checks cpuid; nothing here runs elsewhere).
 *
 * Eight consecutive elements i .. i+7 (i a multiple of 8) use eight
 * consecutive states, so one 512-bit vector of 64-bit states decodes them
 * with the scalar arithmetic lane by lane (the same products, the same
 * bytes).  The refill is where the lanes meet: the lanes whose state fell
 * below RANS_L take the next words of the shared stream in lane order,
 * which is element order, the order FORMAT.md gives; a masked expand puts
 * word k into the k-th lane that needs one.
 *
 * Everything else comes from dec_core.h: the checked tail of a part, and in
 * QRES any group of eight holding an element off the vector path (an empty
 * bucket or one above 2^16 floats; under code 0 a subnormal or the symbol
 * that the row's top0 cuts short), which is decoded in scalar so that its
 * words are taken in order.
 */
#include <immintrin.h>
#include <stddef.h>

#include "dec_core.h"

/* the gathers below read these layouts as 64-bit words */
_Static_assert(sizeof(ft_dec_entry) == 8 && offsetof(ft_dec_entry, freq) == 2 && offsetof(ft_dec_entry, bias) == 4,
	       "ft_dec_entry layout");
_Static_assert(sizeof(qs_bucket) == 24 && offsetof(qs_bucket, n) == 4 && offsetof(qs_bucket, step) == 8
	       && offsetof(qs_bucket, shift) == 16, "qs_bucket layout");

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#define AVX512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512dq,avx512vl,avx512bw")))

/* The refill of eight lanes: lanes below RANS_L take the next words in lane
 * order.  The caller's batch guarantees 8 words can be loaded. */
AVX512_INLINE __m512i refill8(__m512i x, const uint8_t **p)
{
	__mmask8 need = _mm512_cmplt_epu64_mask(x, _mm512_set1_epi64((long long)RANS_L));
	__m256i w = _mm256_maskz_expand_epi32(need, _mm256_loadu_si256((const __m256i *)*p));
	x = _mm512_mask_or_epi64(x, need, _mm512_slli_epi64(x, 32), _mm512_cvtepu32_epi64(w));
	*p += 4 * (unsigned)__builtin_popcount(need);
	return x;
}

/* ---- QCODE -------------------------------------------------------------- */

/* Table symbols of elements i .. i+7 from states X[i & wm ..]: the
 * states step and refill; returns the eight entries (ft_dec_entry, 8 bytes:
 * sym | freq << 16 | bias << 32). */
AVX512_INLINE __m512i sym8(uint64_t *X, size_t wm, const uint8_t **p, const ft_dec_entry *tab, size_t i)
{
	uint64_t *xs = &X[i & wm];
	__m512i x = _mm512_loadu_si512(xs);
	__m512i e = _mm512_i64gather_epi64(_mm512_and_si512(x, _mm512_set1_epi64(FT_M - 1)), (const void *)tab, 8);
	__m512i m16 = _mm512_set1_epi64(0xffff);
	__m512i freq = _mm512_and_si512(_mm512_srli_epi64(e, 16), m16);
	__m512i bias = _mm512_and_si512(_mm512_srli_epi64(e, 32), m16);
	x = _mm512_add_epi64(_mm512_mullo_epi64(freq, _mm512_srli_epi64(x, FT_BITS)), bias);
	_mm512_storeu_si512(xs, refill8(x, p));
	return e;
}

/* codes i .. i+7 */
AVX512_INLINE void qcode8(uint64_t *X, size_t wm, const uint8_t **p, const ft_dec_entry *tab, int8_t *q, size_t i)
{
	__m512i e = sym8(X, wm, p, tab, i);
	_mm_storel_epi64((__m128i *)(q + i), _mm512_cvtepi64_epi8(_mm512_sub_epi64(e, _mm512_set1_epi64(128))));
}

AVX512 int qs_dec_qcode_avx512(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	rans_dec rd;
	dstream d;
	size_t i = 0;
	if (open_qcode_part(p, len, n, s->tab, &rd, &d))
		return -1;
	const size_t wm = rd.ways - 1;
	if (rd.ways >= 8) {
		for (size_t b; (b = batch(&d, n - i)) >= 8;)
			for (size_t stop = i + (b & ~(size_t)7); i < stop; i += 8)
				qcode8(rd.x, wm, &d.ptr, s->tab, q, i);
	}
	for (; i < n && !d.bad; i++)
		q[i] = (int8_t)(sym(&rd.x[i & wm], &d, s->tab, 1) - 128);
	return close_part(&rd, &d);
}

/* ---- QTUP -------------------------------------------------------------- */

/* tuples j .. j+7, each of m codes, while their 8-byte stores fit in q (the
 * tuples' codes come by scalar loads: a second gather was slower) */
AVX512_INLINE void qtup8(uint64_t *X, size_t wm, const uint8_t **p, const ft_dec_entry *tab, const uint64_t *tup,
			 unsigned m, int8_t *q, size_t j)
{
	uint16_t sy[8];
	_mm_storeu_si128((__m128i *)sy, _mm512_cvtepi64_epi16(sym8(X, wm, p, tab, j)));
	for (unsigned l = 0; l < 8; l++)
		memcpy(q + (j + l) * m, &tup[sy[l]], 8);
}

AVX512 int qs_dec_qtup_avx512(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	rans_dec rd;
	dstream d;
	qtup_part t;
	size_t j = 0;
	if (open_qtup_part(p, len, n, s->tab, s->tup, &t, &rd, &d))
		return -1;
	const size_t wm = rd.ways - 1;
	/* the tuples whose 8-byte store fits: j m + 8 <= n */
	size_t fit = n >= 8 ? (n - 8) / t.m + 1 : 0, lim = fit < t.nt ? fit : t.nt;
	if (rd.ways >= 8) {
		for (size_t b; (b = batch(&d, lim - j)) >= 8;)
			for (size_t stop = j + (b & ~(size_t)7); j < stop; j += 8)
				qtup8(rd.x, wm, &d.ptr, s->tab, s->tup, t.m, q, j);
	}
	return qtup_rest(&t, q, j, &rd, &d, s->tab);
}

/* ---- FSYM (16-bit floats) ---------------------------------------------- */

_Static_assert(sizeof(fsym_fast) == 8 && offsetof(fsym_fast, bias) == 2 && offsetof(fsym_fast, base) == 4
	       && offsetof(fsym_fast, w) == 6 && offsetof(fsym_fast, shift) == 7, "fsym_fast layout");

/* Elements i .. i+7 as joint symbols; 0, touching nothing, if one of them is
 * not (a subnormal: FSYM_SLOW). */
AVX512_INLINE int fsym8(uint64_t *X, size_t wm, const uint8_t **p, const fsym_fast *ff, uint8_t *out, size_t i)
{
	const __m512i one = _mm512_set1_epi64(1), m8 = _mm512_set1_epi64(0xff), m16 = _mm512_set1_epi64(0xffff);
	uint64_t *xs = &X[i & wm];
	__m512i x = _mm512_loadu_si512(xs);
	/* fsym_fast is 8 bytes: freq | bias << 16 | base << 32 | w << 48 | shift << 56 */
	__m512i e = _mm512_i64gather_epi64(_mm512_and_si512(x, _mm512_set1_epi64(FT_M - 1)), (const void *)ff, 8);
	__m512i w = _mm512_and_si512(_mm512_srli_epi64(e, 48), m8);
	if (_mm512_cmpeq_epi64_mask(w, _mm512_set1_epi64(FSYM_SLOW)))
		return 0;
	__m512i mant = _mm512_and_si512(_mm512_srli_epi64(x, FT_BITS), _mm512_sub_epi64(_mm512_sllv_epi64(one, w), one));
	__m512i val = _mm512_add_epi64(_mm512_and_si512(_mm512_srli_epi64(e, 32), m16),
				       _mm512_sllv_epi64(mant, _mm512_srli_epi64(e, 56)));
	x = _mm512_add_epi64(_mm512_mullo_epi64(_mm512_and_si512(e, m16),
						_mm512_srlv_epi64(x, _mm512_add_epi64(w, _mm512_set1_epi64(FT_BITS)))),
			     _mm512_and_si512(_mm512_srli_epi64(e, 16), m16));
	x = refill8(x, p);
	_mm512_storeu_si512(xs, x);
	_mm_storeu_si128((__m128i *)(out + 2 * i), _mm512_cvtepi64_epi16(val));
	return 1;
}

AVX512 int qs_dec_fsym_avx512(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out,
			      size_t n)
{
	rans_dec rd;
	dstream d;
	int empty;
	unsigned shift;
	if (f->esize != 2)
		return qs_dec_fsym(s, f, p, len, out, n);
	if (open_float_part(f, p, len, s->tab, &shift, &empty, &rd, &d) || (empty && n))
		return -1;
	/* parts of fewer than 8 states (under 4096 elements) decode in scalar */
	const size_t wm = rd.ways - 1;
	const int vec = wm >= 7 && n;
	if (vec)
		fsym_fast_build(f, shift, s->tab, s->ffast);
	size_t i = 0;
	for (size_t b; (b = batch(&d, n - i)) > 0;) {
		for (size_t stop = i + b; i < stop;) {
			if (vec && !(i & 7) && stop - i >= 8 && fsym8(rd.x, wm, &d.ptr, s->ffast, out, i)) {
				i += 8;
				continue;
			}
			size_t g = (i | 7) + 1 < stop ? (i | 7) + 1 : stop;   /* to the next multiple of 8 */
			for (; i < g; i++)
				store(out + 2 * i, fsym(&rd.x[i & wm], &d, f, s->tab, f->magmask, shift, 0), 2);
		}
	}
	for (; i < n && !d.bad; i++)
		store(out + 2 * i, fsym(&rd.x[i & wm], &d, f, s->tab, f->magmask, shift, 1), 2);
	return close_part(&rd, &d);
}

/* ---- QRES (16-bit floats) ---------------------------------------------- */

/* A code-0 element's sign+exponent symbol, for the vector path: its fixed
 * bits (sign, first magnitude), mantissa width w (ZD_SLOW when the mantissa
 * is not a power-of-two count) and shift, and its largest magnitude: a
 * symbol wholly at or below the row's top0 decodes exactly as in an FSYM
 * part, with one joint step. */
#define ZD_SLOW 0xff
static void zdesc_build(const qs_fmtinfo *f, unsigned shift, uint64_t *zd)
{
	for (uint32_t y = 0; y < f->nsym; y++) {
		unsigned sh = shift;
		uint32_t first, sign;
		uint64_t n = qs_fsym_count_shifted(f, y, f->magmask, &sh, &first, &sign);
		unsigned w = rans_log2_exact(n);
		uint64_t top = n ? ((uint64_t)first + n - 1) << sh : 0xffff;
		uint64_t wide = w <= RANS_JOINT_MAX_BITS ? w : ZD_SLOW;
		zd[y] = (sign << (f->exp_bits + f->mant_bits) | first << sh) | wide << 16 | (uint64_t)sh << 24 | top << 32;
	}
}

/* Elements i .. i+7 of one row: codes != 0 as the float's position in its
 * bucket (uniform(n), 1 <= n <= 2^16), code 0 as a joint sign+exponent
 * symbol.  Returns 0, without touching anything, if one of them is neither
 * (zd is NULL when code 0 cannot take the vector path: an empty table).
 * With ZOK, code 0 is the one float ZVAL of a one-symbol table (qres_skip):
 * such an element, like one in a bucket of n = 1, is a step that leaves its
 * state as it is, so a group made only of them is written without any rANS
 * arithmetic. */
AVX512_INLINE int qres8(uint64_t *X, size_t wm, const uint8_t **p, const qs_qtab *t, const ft_dec_entry *tab,
			const uint64_t *zd, int zok, uint32_t zval, const int8_t *q, uint8_t *out, size_t i)
{
	const __m512i one = _mm512_set1_epi64(1), m16 = _mm512_set1_epi64(0xffff), m32 = _mm512_set1_epi64(0xffffffff);
	__m512i c = _mm512_cvtepi8_epi64(_mm_loadl_epi64((const __m128i *)(q + i)));
	/* qs_bucket is 24 bytes: lo | n << 32, step, shift */
	__m512i at3 = _mm512_mullo_epi64(_mm512_add_epi64(c, _mm512_set1_epi64(128)), _mm512_set1_epi64(3));
	const long long *base = (const long long *)(const void *)t->b;
	__m512i lon = _mm512_i64gather_epi64(at3, base, 8);
	__m512i n = _mm512_srli_epi64(lon, 32);
	__mmask8 zero = _mm512_cmpeq_epi64_mask(c, _mm512_setzero_si512());
	__mmask8 off = _mm512_cmpge_epu64_mask(_mm512_sub_epi64(n, one), _mm512_set1_epi64(RANS_UNIFORM_MAX)) & ~zero;
	if (off || (zero && !zd))
		return 0;
	/* every bucket's shift is the part's or 0: no gather when that is 0 */
	__m512i shift = _mm512_setzero_si512();
	if (t->shift)
		shift = _mm512_and_si512(_mm512_i64gather_epi64(_mm512_add_epi64(at3, _mm512_set1_epi64(2)), base, 8), m32);
	__mmask8 neg = _mm512_cmplt_epi64_mask(c, _mm512_setzero_si512());
	if (zok && !(_mm512_cmpgt_epu64_mask(n, one) & ~zero)) {
		__m512i val = _mm512_sllv_epi64(_mm512_and_si512(lon, m32), shift);
		val = _mm512_mask_or_epi64(val, neg, val, _mm512_set1_epi64(0x8000));
		val = _mm512_mask_mov_epi64(val, zero, _mm512_set1_epi64((long long)zval));
		_mm_storeu_si128((__m128i *)(out + 2 * i), _mm512_cvtepi64_epi16(val));
		return 1;
	}
	uint64_t *xs = &X[i & wm];
	__m512i x = _mm512_loadu_si512(xs);
	__m512i slot = _mm512_and_si512(x, m16);
	/* v = ((slot + 1) n - 1) >> 16; both factors < 2^32 */
	__m512i v = _mm512_srli_epi64(_mm512_sub_epi64(_mm512_mul_epu32(_mm512_add_epi64(slot, one), n), one),
				      RANS_UNIFORM_BITS);
	/* start(v) = floor(v 2^16 / n) in doubles, without gathering the step:
	 * v r (r = 2^16/n rounded) is within 2^-36 of the quotient, which is an
	 * integer or at least 1/n >= 2^-16 below the next one, so adding 2^-20
	 * and truncating is exact (checked for every n <= 2^16 and v <= n in
	 * test_codec's test_uniform_slots_exact) */
	__m512d r = _mm512_div_pd(_mm512_set1_pd(65536.0), _mm512_cvtepu64_pd(n));
	__m512d vd = _mm512_cvtepu64_pd(v), eps = _mm512_set1_pd(0x1p-20);
	__m512i start = _mm512_cvttpd_epu64(_mm512_fmadd_pd(vd, r, eps));
	__m512d vd1 = _mm512_add_pd(vd, _mm512_set1_pd(1.0));
	__m512i f = _mm512_sub_epi64(_mm512_cvttpd_epu64(_mm512_fmadd_pd(vd1, r, eps)), start);
	__m512i xn = _mm512_add_epi64(_mm512_mullo_epi64(f, _mm512_srli_epi64(x, RANS_UNIFORM_BITS)),
				      _mm512_sub_epi64(slot, start));
	__m512i val = _mm512_sllv_epi64(_mm512_add_epi64(_mm512_and_si512(lon, m32), v), shift);
	val = _mm512_mask_or_epi64(val, neg, val, _mm512_set1_epi64(0x8000));
	if (zero && zok) {   /* exact zeros: the step leaves the state as it is */
		val = _mm512_mask_mov_epi64(val, zero, _mm512_set1_epi64((long long)zval));
		xn = _mm512_mask_mov_epi64(xn, zero, x);
	} else if (zero) {
		__m512i e = _mm512_i64gather_epi64(_mm512_and_si512(x, _mm512_set1_epi64(FT_M - 1)), (const void *)tab, 8);
		__m512i d = _mm512_i64gather_epi64(_mm512_and_si512(e, m16), (const void *)zd, 8);
		__m512i w = _mm512_and_si512(_mm512_srli_epi64(d, 16), _mm512_set1_epi64(0xff));
		__m512i top0 = _mm512_set1_epi64(t->top0);
		__mmask8 bad = _mm512_mask_cmpeq_epi64_mask(zero, w, _mm512_set1_epi64(ZD_SLOW))
			| _mm512_mask_cmpgt_epu64_mask(zero, _mm512_srli_epi64(d, 32), top0);
		if (bad)
			return 0;
		__m512i mv = _mm512_and_si512(_mm512_srli_epi64(x, FT_BITS), _mm512_sub_epi64(_mm512_sllv_epi64(one, w), one));
		__m512i xz = _mm512_add_epi64(
			_mm512_mullo_epi64(_mm512_and_si512(_mm512_srli_epi64(e, 16), m16),
					   _mm512_srlv_epi64(x, _mm512_add_epi64(w, _mm512_set1_epi64(FT_BITS)))),
			_mm512_and_si512(_mm512_srli_epi64(e, 32), m16));
		__m512i vz = _mm512_add_epi64(_mm512_and_si512(d, m16),
					      _mm512_sllv_epi64(mv, _mm512_and_si512(_mm512_srli_epi64(d, 24), _mm512_set1_epi64(0xff))));
		xn = _mm512_mask_mov_epi64(xn, zero, xz);
		val = _mm512_mask_mov_epi64(val, zero, vz);
	}
	x = refill8(xn, p);
	_mm512_storeu_si512(xs, x);
	_mm_storeu_si128((__m128i *)(out + 2 * i), _mm512_cvtepi64_epi16(val));
	return 1;
}

/* The floats the codes alone determine, for a lookup without gathers (the
 * AVX-512 gather is slow on some CPUs): a row's one[] as 256 16-bit values
 * in eight vectors, QS_QTAB_MANY becoming 0xffff (no bucket float is that
 * NaN), and ZVAL at code 0 when ZOK. */
typedef struct known16 { __m512i t[8]; } known16;

AVX512_INLINE void known16_make(const qs_qtab *t, int zok, uint32_t zval, known16 *k)
{
	for (unsigned v = 0; v < 8; v++) {
		__m256i lo = _mm512_cvtepi32_epi16(_mm512_loadu_si512(t->one + 32 * v));
		__m256i hi = _mm512_cvtepi32_epi16(_mm512_loadu_si512(t->one + 32 * v + 16));
		k->t[v] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
	}
	if (zok)   /* code 0 is entry 128: the first of t[4] */
		k->t[4] = _mm512_mask_mov_epi16(k->t[4], 1, _mm512_set1_epi16((short)zval));
}

/* Elements i .. i+31: the determined floats are written; returns the mask
 * of the others.  Four two-vector permutes cover 64 entries each, bits 6
 * and 7 of the index choose among them. */
AVX512_INLINE __mmask32 qres32_known(const known16 *k, const int8_t *q, uint8_t *out, size_t i)
{
	__m512i idx = _mm512_add_epi16(_mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(q + i))),
				       _mm512_set1_epi16(128));
	__m512i r0 = _mm512_permutex2var_epi16(k->t[0], idx, k->t[1]);
	__m512i r1 = _mm512_permutex2var_epi16(k->t[2], idx, k->t[3]);
	__m512i r2 = _mm512_permutex2var_epi16(k->t[4], idx, k->t[5]);
	__m512i r3 = _mm512_permutex2var_epi16(k->t[6], idx, k->t[7]);
	__mmask32 b6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(64));
	__mmask32 b7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(128));
	__m512i v = _mm512_mask_blend_epi16(b7, _mm512_mask_blend_epi16(b6, r0, r1), _mm512_mask_blend_epi16(b6, r2, r3));
	_mm512_storeu_si512(out + 2 * i, v);
	return _mm512_cmpeq_epi16_mask(v, _mm512_set1_epi16(-1));
}
/* Elements [i, stop), all within the caller's batch: vectors of eight where
 * they can, scalar before the first multiple of 8 and for groups off the
 * common path. */
AVX512_INLINE size_t qres_dense(dstream *d, uint64_t *X, size_t wm, const qs_fmtinfo *f, const ft_dec_entry *tab,
				const uint64_t *zd, int zok, uint32_t zval, const qs_qtab *t, const int8_t *q,
				int empty, uint8_t *out, size_t i, size_t stop)
{
	while (i < stop) {
		if (wm >= 7 && !(i & 7) && stop - i >= 8 && qres8(X, wm, &d->ptr, t, tab, zd, zok, zval, q, out, i)) {
			i += 8;
			continue;
		}
		size_t g = (i | 7) + 1 < stop ? (i | 7) + 1 : stop;   /* to the next multiple of 8 */
		for (; i < g; i++) {
			uint32_t v;
			if (!qres_skip(t, q[i], zok, zval, 0x8000, &v))
				v = qres_one(&X[i & wm], d, f, tab, t, q[i], empty, 0, 2);
			store(out + 2 * i, v, 2);
		}
	}
	return i;
}

/* One row's elements [i, end): sparse groups of 64 (dec_core.h), else dense
 * as far as the stream's batch allows, and checked one by one beyond it
 * (the end of the part). */
AVX512_INLINE size_t qres_row16(dstream *d, uint64_t *X, size_t wm, const qs_fmtinfo *f, const ft_dec_entry *tab,
				const uint64_t *zd, int zok, uint32_t zval, const qs_qtab *t,
				const int8_t *q, int empty, uint8_t *out, size_t i, size_t end, unsigned *backoff,
				const known16 *kn)
{
	while (i < end && !d->bad) {
		if (!(i & 63) && end - i >= 64 && !*backoff) {
			uint64_t hard = (uint64_t)qres32_known(kn, q, out, i) | (uint64_t)qres32_known(kn, q, out, i + 32) << 32;
			if (__builtin_popcountll(hard) <= QRES_SPARSE_MAX) {
				qres_hard(d, X, wm, f, tab, t, q, empty, out, i, hard, 2);
				i += 64;
				continue;
			}
			*backoff = QRES_BACKOFF;
		}
		size_t lim = qres_dense_end(i, end, backoff);
		i = qres_dense(d, X, wm, f, tab, zd, zok, zval, t, q, empty, out, i, i + batch(d, lim - i));
		for (; i < lim && !d->bad; i++)
			store(out + 2 * i, qres_one(&X[i & wm], d, f, tab, t, q[i], empty, 1, 2), 2);
	}
	return i;
}

AVX512 int qs_dec_qres_avx512(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len,
			      const int8_t *q, size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales,
			      uint8_t *out)
{
	rans_dec rd;
	dstream d;
	int empty;
	unsigned shift;
	if (f->esize != 2)
		return qs_dec_qres(s, f, p, len, q, n, e0, cols, scales, out);
	if (open_float_part(f, p, len, s->tab, &shift, &empty, &rd, &d))
		return -1;
	const uint64_t *zd = NULL;
	if (!empty && rd.ways >= 8) {
		zdesc_build(f, shift, s->zdesc);
		zd = s->zdesc;
	}
	uint32_t zval = 0, ztop = 0;
	int zfix = qres_zfix(f, s->tab, shift, empty, &zval, &ztop);
	unsigned backoff = 0;
	const qs_qtab *tk = NULL;   /* what kn was made from */
	uint32_t sk = 0;
	int zk = 0;
	known16 kn;
	for (size_t i = 0; i < n && !d.bad;) {
		uint64_t r;
		size_t end = qs_row_end(e0, cols, i, n, &r);
		const qs_qtab *t = qs_qtab_get(&s->qcache, f, scales[r], shift);
		int zok = zfix && ztop <= t->top0;
		if (t != tk || t->scale_bits != sk || zok != zk) {   /* consecutive rows of one scale share them */
			known16_make(t, zok, zval, &kn);
			tk = t;
			sk = t->scale_bits;
			zk = zok;
		}
		i = qres_row16(&d, rd.x, rd.ways - 1, f, s->tab, zd, zok, zval, t, q, empty, out, i, end, &backoff, &kn);
	}
	return close_part(&rd, &d);
}
