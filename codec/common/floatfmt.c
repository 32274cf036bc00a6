/* floatfmt.c - float layouts, scale rounding and bucket tables. */
#include "floatfmt.h"

#include <math.h>
#include <string.h>

#include "internal.h"
#include "rans.h"

static const qs_fmtinfo FMT[] = {
	[QS_FMT_BF16] = { QS_FMT_BF16, 2, 8, 7, 0x7fff, 0x7f7f, (2u << 8) + 2 },
	[QS_FMT_F16] = { QS_FMT_F16, 2, 5, 10, 0x7fff, 0x7bff, (2u << 5) + 2 },
	[QS_FMT_F32] = { QS_FMT_F32, 4, 8, 23, 0x7fffffff, 0x7f7fffff, (2u << 8) + 2 },
};

const qs_fmtinfo *qs_fmt_info(int fmt)
{
	return fmt >= QS_FMT_BF16 && fmt <= QS_FMT_F32 ? &FMT[fmt] : NULL;
}

int qs_fmt_from_dtype(const char *d)
{
	return !strcmp(d, "BF16") ? QS_FMT_BF16 : !strcmp(d, "F16") ? QS_FMT_F16
		: !strcmp(d, "F32") ? QS_FMT_F32 : QS_FMT_NONE;
}

const char *qs_fmt_dtype(int fmt)
{
	return fmt == QS_FMT_BF16 ? "BF16" : fmt == QS_FMT_F16 ? "F16" : fmt == QS_FMT_F32 ? "F32" : "?";
}

static uint32_t f32_bits(float f) { uint32_t b; memcpy(&b, &f, 4); return b; }

/* largest magnitude pattern whose value is <= x (x >= 0 finite) */
static uint32_t mag_floor(const qs_fmtinfo *f, double x)
{
	if (!(x > 0))
		return 0;
	if (x >= (double)qs_to_f32(f, f->magmax))
		return f->magmax;
	float v = (float)x;
	if ((double)v > x)
		v = nextafterf(v, 0.0f);
	uint32_t b = f32_bits(v);
	if (f->fmt == QS_FMT_F32)
		return b;
	if (f->fmt == QS_FMT_BF16)
		return b >> 16;
	int e = (int)(b >> 23) - 127;
	if (e < -14)
		return (uint32_t)(v * 0x1p24f);   /* subnormal half: truncates */
	return (uint32_t)(e + 15) << 10 | ((b >> 13) & 1023);
}

uint32_t qs_scale_for(const qs_fmtinfo *f, float absmax)
{
	if (!(absmax > 0))
		return 0;
	double want = (double)absmax / 127.5;
	uint32_t s = mag_floor(f, want);
	/* round up, then make sure the quotient really stays <= 127.5 */
	while (s < f->magmax && ((double)qs_to_f32(f, s) < want || !(absmax / qs_to_f32(f, s) <= 127.5f)))
		s++;
	return s;
}

uint32_t qs_fmt_round(const qs_fmtinfo *f, float v)
{
	uint32_t b = f32_bits(v);
	if (f->fmt == QS_FMT_F32 && v >= 0.0f && b <= f->magmax)
		return b;
	if (f->fmt == QS_FMT_BF16 && v >= 0.0f && b < 0x7f7f8000u)   /* rounds to a finite bf16 */
		return (b + 0x7fffu + ((b >> 16) & 1)) >> 16;
	uint32_t lo = mag_floor(f, (double)v);
	if (lo >= f->magmax)
		return f->magmax;
	/* both neighbours and v are binary32 values: the differences are exact */
	double below = (double)v - (double)qs_to_f32(f, lo), above = (double)qs_to_f32(f, lo + 1) - (double)v;
	return below < above ? lo : above < below ? lo + 1 : lo + (lo & 1);
}

/* smallest magnitude m with rint(m/s) >= k; magmax+1 if none */
static uint32_t first_at_least(const qs_fmtinfo *f, float s, int k)
{
	uint32_t m = mag_floor(f, ((double)k - 0.5) * s), steps = 0;
	while (m > 0 && qs_rquot(qs_to_f32(f, m - 1), s) >= (float)k && steps++ < 8)
		m--;
	while (m <= f->magmax && qs_rquot(qs_to_f32(f, m), s) < (float)k && steps++ < 16)
		m++;
	if (steps < 16 && (m == 0 || qs_rquot(qs_to_f32(f, m - 1), s) < (float)k))
		return m;
	/* the guess was far off (should not happen): bisect */
	uint32_t lo = 0, hi = f->magmax + 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (qs_rquot(qs_to_f32(f, mid), s) >= (float)k)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* largest magnitude m with fl32(m/s) <= 127.5 */
static uint32_t cap_of(const qs_fmtinfo *f, float s)
{
	uint32_t m = mag_floor(f, 127.5 * (double)s), steps = 0;
	while (m < f->magmax && qs_to_f32(f, m + 1) / s <= 127.5f && steps++ < 16)
		m++;
	while (m > 0 && !(qs_to_f32(f, m) / s <= 127.5f) && steps++ < 32)
		m--;
	return m;
}

void qs_qtab_build(const qs_fmtinfo *f, uint32_t scale_bits, unsigned shift, qs_qtab *t)
{
	memset(t->b, 0, sizeof(t->b));
	memset(t->one, 0xff, sizeof(t->one));
	t->scale_bits = scale_bits;
	t->shift = shift;
	t->valid = 1;
	float s = qs_to_f32(f, scale_bits);
	if (!(s > 0) || !(s <= qs_to_f32(f, f->magmax))) {
		t->top0 = 0;   /* all-zero row (or a scale we never write) */
		return;
	}
	uint32_t bnd[130];
	for (int k = 1; k <= 128; k++)
		bnd[k] = first_at_least(f, s, k);
	uint32_t cap = cap_of(f, s);
	bnd[129] = cap + 1;
	t->top0 = bnd[1] - 1;
	for (int k = 1; k <= 128; k++) {
		uint32_t lo = bnd[k], end = bnd[k + 1] < cap + 1 ? bnd[k + 1] : cap + 1;
		uint32_t n = end > lo ? end - lo : 0;
		if (k <= 127) {                 /* -k */
			t->b[128 - k].lo = lo;
			t->b[128 - k].n = n;
		}
		if (k == 128) {                 /* -128: exactly -127.5 */
			t->b[0].lo = lo;
			t->b[0].n = n;
		}
	}
	/* +127 also takes the quotients that round to 128 */
	for (int k = 1; k <= 127; k++) {
		uint32_t lo = bnd[k], end = k == 127 ? cap + 1 : bnd[k + 1];
		t->b[128 + k].lo = lo;
		t->b[128 + k].n = end > lo ? end - lo : 0;
	}
	for (int i = 0; i < 256; i++) {
		qs_bucket *b = &t->b[i];
		b->shift = b->lo >= (1u << f->mant_bits) ? shift : 0;
		if (b->shift && b->n) {   /* count only multiples of 2^shift */
			uint32_t first = (uint32_t)(((uint64_t)b->lo + (1u << shift) - 1) >> shift);
			uint32_t last = (b->lo + b->n - 1) >> shift;
			b->lo = first;
			b->n = last >= first ? last - first + 1 : 0;
		}
		b->step = rans_step_make(b->n);
		if (b->n == 1 && i != 128)
			t->one[i] = (i < 128 ? 1u << (8 * f->esize - 1) : 0) | b->lo << b->shift;
	}
}

void qs_qtab_cache_reset(qs_qtab_cache *c)
{
	for (int i = 0; i < QS_QTAB_CACHE; i++)
		c->t[i].valid = 0;
}

const qs_qtab *qs_qtab_get(qs_qtab_cache *c, const qs_fmtinfo *f, uint32_t scale_bits, unsigned shift)
{
	uint32_t h = ((scale_bits ^ shift << 27) * 0x9E3779B1u) >> 24;
	qs_qtab *t = &c->t[h % QS_QTAB_CACHE];
	if (!t->valid || t->scale_bits != scale_bits || t->shift != shift)
		qs_qtab_build(f, scale_bits, shift, t);
	return t;
}
