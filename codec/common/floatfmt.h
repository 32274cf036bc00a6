/*
 * floatfmt.h - float layouts, the INT8 quantiser and its buckets.
 *
 * Quantisation (FORMAT.md "quantisation"), per output row of a 2-D weight:
 *   scale = absmax(row) / 127.5 rounded UP to the source dtype (so that
 *           |w / scale| <= 127.5 for every w of the row: no code is clamped
 *           by more than half a step);
 *   q     = clamp(rint(fl32(w / scale)), -128, 127), computed in IEEE binary32
 *           with round-half-even, with the scale exactly as stored.
 * q is a monotone function of w, so the floats that share a code form one
 * contiguous run of bit patterns: a bucket.  The residual codec codes a float
 * as its position inside its row's bucket; both sides rebuild the buckets of a
 * scale from the scale alone (qs_qtab_build).
 */
#ifndef QS_FLOATFMT_H
#define QS_FLOATFMT_H

#include <stddef.h>
#include <stdint.h>

/* Float layouts the codecs understand (sign | exponent | mantissa). */
enum qs_fmt { QS_FMT_NONE = 0, QS_FMT_BF16 = 1, QS_FMT_F16 = 2, QS_FMT_F32 = 3 };

typedef struct qs_fmtinfo {
	int fmt;                 /* enum qs_fmt */
	uint32_t esize;          /* 2 or 4 */
	unsigned exp_bits, mant_bits;
	uint32_t magmask;        /* all bits but the sign */
	uint32_t magmax;         /* largest finite magnitude pattern */
	uint32_t nsym;           /* sign+exponent alphabet: 2^(1+exp_bits) + 2 */
} qs_fmtinfo;

const qs_fmtinfo *qs_fmt_info(int fmt);
int qs_fmt_from_dtype(const char *dtype);          /* QS_FMT_NONE if not a float we model */
const char *qs_fmt_dtype(int fmt);

static inline float qs_f32_from_bits(uint32_t b)
{
	float v;
	__builtin_memcpy(&v, &b, 4);
	return v;
}
/* The value of a float of format f, exactly, as binary32 (inline: the
 * packer calls it for every weight). */
static inline float qs_to_f32(const qs_fmtinfo *f, uint32_t bits)
{
	if (f->fmt == QS_FMT_BF16)
		return qs_f32_from_bits(bits << 16);
	if (f->fmt == QS_FMT_F32)
		return qs_f32_from_bits(bits);
	uint32_t sign = (bits & 0x8000) << 16, e = (bits >> 10) & 31, m = bits & 1023;
	if (e == 0) {
		float v = (float)m * 0x1p-24f;  /* exact: subnormal or zero */
		return sign ? -v : v;
	}
	if (e == 31)
		return qs_f32_from_bits(sign | 0x7f800000 | m << 13);
	return qs_f32_from_bits(sign | (e + 112) << 23 | m << 13);
}
static inline uint32_t qs_load(const qs_fmtinfo *f, const uint8_t *p)
{
	return f->esize == 2 ? (uint32_t)(p[0] | p[1] << 8)
		: (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void qs_store(const qs_fmtinfo *f, uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
	if (f->esize == 4) { p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
}
static inline int qs_is_finite(const qs_fmtinfo *f, uint32_t bits)
{
	return (bits & f->magmask) <= f->magmax;
}

/* Scale bits for a row whose largest |w| is absmax (finite, >= 0). */
uint32_t qs_scale_for(const qs_fmtinfo *f, float absmax);
/* The float of format f nearest to v (finite, >= 0), ties to even: the
 * lower views' scales (FORMAT.md section 7). */
uint32_t qs_fmt_round(const qs_fmtinfo *f, float v);

/* rint(fl32(v/s)) with |v/s| clamped to 200 first so that the rounding trick
 * below stays exact; s > 0. */
static inline float qs_rquot(float v, float s)
{
	float t = v / s;
	if (t > 200.0f) t = 200.0f;
	if (t < -200.0f) t = -200.0f;
	/* adding 1.5*2^23 leaves an ulp of 1: round-half-even to an integer */
	const float big = 12582912.0f; /* never folded: no -ffast-math */
	return (t + big) - big;
}
static inline int qs_quant(float v, float s)
{
	if (s == 0.0f)
		return 0;
	int q = (int)qs_rquot(v, s);
	return q < -128 ? -128 : q > 127 ? 127 : q;
}

/* The buckets of one scale.  b[q + 128] = magnitudes [lo, lo + n) of the
 * floats with code q (sign implied by q); code 0 holds every magnitude up to
 * top0 with either sign. */
typedef struct qs_bucket {
	uint32_t lo, n;          /* in units of 2^shift magnitudes */
	uint64_t step;           /* rans.h: uniform symbol over n */
	uint32_t shift;          /* the chunk's shift, or 0 for a bucket reaching subnormals */
} qs_bucket;
typedef struct qs_qtab {
	uint32_t scale_bits;
	unsigned shift;          /* buckets in units of 2^shift magnitudes (see below) */
	int valid;
	uint32_t top0;
	qs_bucket b[256];
	/* one[q + 128]: the float of code q when its bucket holds exactly one
	 * (sign included), else QS_QTAB_MANY; always QS_QTAB_MANY for code 0.
	 * Lets a decoder write a row's determined floats without rANS steps. */
	uint32_t one[256];
} qs_qtab;
#define QS_QTAB_MANY 0xffffffffu

/* SHIFT: the low SHIFT mantissa bits of every normal float of the chunk are
 * zero (an FP16 or F32 checkpoint made from BF16 has 3 or 16 of them), so only
 * every 2^SHIFT-th normal magnitude can occur: a bucket of normal floats then
 * counts only those, and a float is ((lo + index) << shift).  Subnormals
 * (their mantissa is the whole value) keep shift 0. */
void qs_qtab_build(const qs_fmtinfo *f, uint32_t scale_bits, unsigned shift, qs_qtab *t);

/* A small direct-mapped cache of bucket tables: rows of a tensor share few
 * distinct scales.  Lives in per-thread scratch. */
#define QS_QTAB_CACHE 256
typedef struct qs_qtab_cache { qs_qtab t[QS_QTAB_CACHE]; } qs_qtab_cache;
void qs_qtab_cache_reset(qs_qtab_cache *c);
const qs_qtab *qs_qtab_get(qs_qtab_cache *c, const qs_fmtinfo *f, uint32_t scale_bits, unsigned shift);

/* Rows of a quantised chunk: element i of n that start at element e0 of a
 * tensor with cols columns lies in row *r, counted from the chunk's first
 * row as its scales are; returns the end of that row in the chunk, at most
 * n. */
static inline size_t qs_row_end(uint64_t e0, uint64_t cols, size_t i, size_t n, uint64_t *r)
{
	uint64_t row = (e0 + i) / cols;
	size_t end = (size_t)((row + 1) * cols - e0);
	*r = row - e0 / cols;
	return end < n ? end : n;
}

/* Accumulate a float into the OR of the mantissas of normal floats. */
static inline uint32_t qs_shift_acc(const qs_fmtinfo *f, uint32_t acc, uint32_t bits)
{
	return (bits & f->magmask) >> f->mant_bits ? acc | bits : acc;
}

/* The shift of a chunk: trailing mantissa bits that are zero in all of its
 * normal floats (all mantissa bits if every mantissa is zero). */
static inline unsigned qs_shift_of(const qs_fmtinfo *f, uint32_t mant_or)
{
	mant_or &= (1u << f->mant_bits) - 1;
	return mant_or ? (unsigned)__builtin_ctz(mant_or) : f->mant_bits;
}

/* ---- sign+exponent symbols (plain floats and code 0) -------------------
 * symbol = sign << e | exponent for a nonzero exponent or an exact zero,
 * 2^(1+e) + sign for a subnormal; then the mantissa is coded uniformly over
 * the magnitudes of that symbol that do not exceed `top`. */
static inline uint32_t qs_fsym(const qs_fmtinfo *f, uint32_t bits, uint32_t *base)
{
	uint32_t sign = (bits >> (f->exp_bits + f->mant_bits)) & 1;
	uint32_t mag = bits & f->magmask, e = mag >> f->mant_bits;
	if (e == 0 && mag != 0) {
		*base = 1;
		return (2u << f->exp_bits) + sign;
	}
	*base = e << f->mant_bits;
	return sign << f->exp_bits | e;
}

/* Number of mantissas for symbol sym under top, its first magnitude in *base
 * and its sign in *sign; 0 if the symbol cannot occur under top. */
static inline uint64_t qs_fsym_count(const qs_fmtinfo *f, uint32_t sym, uint32_t top,
				     uint32_t *base, uint32_t *sign)
{
	uint32_t mmask = (1u << f->mant_bits) - 1, hi;
	if (sym >= (2u << f->exp_bits)) {
		*sign = sym & 1;
		*base = 1;
		hi = mmask;
	} else {
		uint32_t e = sym & ((1u << f->exp_bits) - 1);
		*sign = sym >> f->exp_bits;
		*base = e << f->mant_bits;
		hi = e ? *base | mmask : 0;
	}
	if (top < *base)
		return 0;
	if (hi > top)
		hi = top;
	return (uint64_t)hi - *base + 1;
}

/* The same counting only magnitudes that are multiples of 2^*shift: *first
 * is the smallest such magnitude >> *shift; a value v codes (first + v) <<
 * *shift.  Zero and subnormal symbols set *shift to 0. */
static inline uint64_t qs_fsym_count_shifted(const qs_fmtinfo *f, uint32_t sym, uint32_t top, unsigned *shift_io,
					     uint32_t *first, uint32_t *sign)
{
	uint32_t base;
	uint64_t n = qs_fsym_count(f, sym, top, &base, sign);
	*first = 0;
	if (!n)
		return 0;
	if (base < (1u << f->mant_bits))
		*shift_io = 0;
	unsigned shift = *shift_io;
	uint32_t last = (uint32_t)((base + n - 1) >> shift);
	*first = (uint32_t)(((uint64_t)base + (1u << shift) - 1) >> shift);
	return last >= *first ? (uint64_t)last - *first + 1 : 0;
}

#endif
