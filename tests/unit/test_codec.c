/*
 * test_codec.c - the entropy coder and the chunk codecs, property-based:
 * random shapes, formats, scale spreads and special values round trip
 * exactly; the quantiser's buckets agree with the quantiser; damaged parts
 * are rejected without crashing.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../codec/common/internal.h"
#include "../../codec/compress/encode.h"
#include "../../codec/decompress/decode.h"

/* the decoder kernel set under test: main runs every test once per set the
 * CPU can run, and each must give the scalar set's bytes */
static const qs_dec_kernels *K;

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
	return rng;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static double gauss(void) { return (unif() + unif() + unif() + unif() - 2.0) * 1.7320508; }

static uint32_t from_f32(const qs_fmtinfo *f, float v)
{
	/* round to nearest even into the format (for bf16 and f32; f16 by search) */
	uint32_t b;
	memcpy(&b, &v, 4);
	if (f->fmt == QS_FMT_F32)
		return b;
	if (f->fmt == QS_FMT_BF16)
		return (b + 0x7fff + ((b >> 16) & 1)) >> 16;
	uint32_t sign = b >> 31 ? 0x8000 : 0, lo = 0, hi = 0x7c00;   /* f16: bisect */
	float a = v < 0 ? -v : v;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (qs_to_f32(f, mid) < a) lo = mid + 1; else hi = mid;
	}
	return sign | lo;
}

/* A QUANT chunk stored with its codes: the first pass (codes, counts), then
 * the residual part; returns its length, *est gets both codings' costs. */
static size_t enc_qres(qs_enc_scratch *es, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0,
		       uint64_t cols, const uint32_t *sc, int8_t *q, uint8_t *pb, qs_quant_est *est)
{
	qs_quant_est e;
	qs_enc_quantise(es, f, in, n, e0, cols, sc, q, est ? est : &e);
	return qs_enc_qres(es, f, in, n, e0, cols, sc, q, (est ? est : &e)->shift, pb);
}

/* ---- rANS arithmetic ------------------------------------------------------- */

static void test_recip_exact(void **state)
{
	(void)state;
	for (uint32_t d = 1; d <= RANS_UNIFORM_MAX; d += (d < 5000 ? 1 : 97)) {
		rans_recip r = rans_recip_make(d);
		for (int k = 0; k < 64; k++) {
			uint64_t x = rnd() >> (1 + rnd() % 40);
			assert_int_equal(rans_recip_div(x, r), x / d);
		}
		uint64_t top = (1ull << 63) - 1;
		assert_int_equal(rans_recip_div(top, r), top / d);
		assert_int_equal(rans_recip_div(top - top % d - 1, r), (top - top % d - 1) / d);
	}
}

static void test_uniform_slots_exact(void **state)
{
	(void)state;
	for (uint32_t n = 2; n <= RANS_UNIFORM_MAX; n += (n < 3000 ? 1 : 101)) {
		uint64_t step = rans_step_make(n);
		assert_int_equal(rans_uniform_start(n, step), RANS_UNIFORM_MAX);
		for (int k = 0; k < (n < 3000 ? (int)n : 200); k++) {
			uint32_t v = n < 3000 ? (uint32_t)k : (uint32_t)(rnd() % n);
			uint64_t exact = ((uint64_t)v << 16) / n;
			uint32_t s0 = rans_uniform_start(v, step), s1 = rans_uniform_start(v + 1, step);
			assert_int_equal(s0, exact);
			assert_true(s1 > s0);
			/* the decoder's inverse maps both ends of v's slots back to v */
			assert_int_equal(((uint64_t)(s0 + 1) * n - 1) >> 16, v);
			assert_int_equal(((uint64_t)s1 * n - 1) >> 16, v);
		}
	}
	/* the AVX-512 kernel's form in doubles (float_dec_avx512.c), for every
	 * n <= 2^16 and v <= n: trunc(fma(v, 2^16 / n, 2^-20)) */
	for (uint32_t n = 1; n <= RANS_UNIFORM_MAX; n++) {
		double r = 65536.0 / (double)n;
		uint32_t bad = 0;
		for (uint32_t v = 0; v <= n; v++)
			bad |= (uint64_t)fma((double)v, r, 0x1p-20) != ((uint64_t)v << 16) / n;
		if (bad)
			fail_msg("double form of start(v) wrong for n = %u", n);
	}
}

/* ---- FSYM: every bit pattern, realistic and hostile ------------------------- */

static void roundtrip_fsym(const qs_fmtinfo *f, const uint8_t *in, size_t n, rans_recip *rc)
{
	qs_enc_scratch *es = qs_enc_scratch_new(n + 4, rc);
	qs_dec_scratch *ds = malloc(sizeof(*ds));
	uint8_t *part = malloc(n * f->esize + QS_PART_SLACK + 1), *out = malloc(n * f->esize + 1);
	size_t len = qs_enc_fsym(es, f, in, n, part);
	assert_true(len > 0 && len <= 1 + n * f->esize);
	if (part[0] == QS_CODEC_FSYM)
		assert_int_equal(K->fsym(ds, f, part + 1, len - 1, out, n), 0);
	else
		memcpy(out, part + 1, len - 1);
	assert_memory_equal(in, out, n * f->esize);
	qs_enc_scratch_free(es);
	free(ds); free(part); free(out);
}

static void test_fsym_roundtrip(void **state)
{
	(void)state;
	rans_recip *rc = qs_recip_table_new();
	for (int fmt = QS_FMT_BF16; fmt <= QS_FMT_F32; fmt++) {
		const qs_fmtinfo *f = qs_fmt_info(fmt);
		for (int trial = 0; trial < 12; trial++) {
			size_t n = 1 + rnd() % 20000;
			uint8_t *in = malloc(n * f->esize);
			for (size_t i = 0; i < n; i++) {
				uint32_t v;
				if (trial % 3 == 0)          /* any pattern: NaN payloads, Inf, subnormals */
					v = (uint32_t)rnd();
				else                          /* weights, with some zeros and specials */
					v = from_f32(f, (float)(gauss() * 0.02));
				if (rnd() % 50 == 0) v = 0;
				if (rnd() % 97 == 0) v = (uint32_t)rnd() & 0x3ff;   /* subnormal-ish */
				qs_store(f, in + i * f->esize, v);
			}
			roundtrip_fsym(f, in, n, rc);
			free(in);
		}
	}
	free(rc);
}

/* F32 mantissas of w = 23 - shift bits: up to 19 bits share the table
 * symbol's rANS step, wider ones are split (FORMAT.md); both sides of that
 * boundary, and a part of each state count (4 below 4096 elements, 32 at
 * and above), must round trip, and a damaged or truncated part of either
 * must be refused or decode to something, never crash. */
static void test_fsym_joint_boundary(void **state)
{
	(void)state;
	rans_recip *rc = qs_recip_table_new();
	const qs_fmtinfo *f = qs_fmt_info(QS_FMT_F32);
	static const size_t sizes[] = { 4095, 4096, 9000 };
	for (unsigned zeros = 2; zeros <= 6; zeros++) {
		for (size_t k = 0; k < 3; k++) {
			size_t n = sizes[k];
			uint8_t *in = malloc(n * 4);
			for (size_t i = 0; i < n; i++) {
				uint32_t v = from_f32(f, (float)(gauss() * 0.02));
				qs_store(f, in + i * 4, v & ~((1u << zeros) - 1));
			}
			roundtrip_fsym(f, in, n, rc);
			qs_enc_scratch *es = qs_enc_scratch_new(n, rc);
			qs_dec_scratch *ds = malloc(sizeof(*ds));
			uint8_t *part = malloc(n * 4 + QS_PART_SLACK + 1), *out = malloc(n * 4);
			size_t len = qs_enc_fsym(es, f, in, n, part);
			assert_int_equal(part[0], QS_CODEC_FSYM);
			assert_int_equal(K->fsym(ds, f, part + 1, len / 2, out, n), -1);   /* truncated */
			for (int t = 0; t < 16; t++) {
				size_t at = 1 + rnd() % (len - 1);
				part[at] ^= (uint8_t)(1 + rnd() % 255);
				int r = K->fsym(ds, f, part + 1, len - 1, out, n);
				assert_true(r == 0 || r == -1);
			}
			qs_enc_scratch_free(es);
			free(ds); free(part); free(out); free(in);
		}
	}
	free(rc);
}

/* The stream header: ways must be a power of two of at most 32, every
 * state in range; anything else is refused before a symbol is decoded. */
static void test_stream_header_checked(void **state)
{
	(void)state;
	uint8_t buf[1 + 8 * 64 + 8];
	rans_dec d;
	for (unsigned ways = 0; ways <= 64; ways++) {
		memset(buf, 0, sizeof(buf));
		buf[0] = (uint8_t)ways;
		for (unsigned i = 0; i < ways; i++)
			buf[1 + 8 * i + 3] = 0x80;   /* RANS_L */
		int ok = ways && ways <= 32 && !(ways & (ways - 1));
		assert_int_equal(rans_dec_init(&d, buf, 1 + 8 * ways), ok ? 0 : -1);
		if (ok) {
			assert_int_equal(rans_dec_init(&d, buf, 8 * ways), -1);       /* short */
			assert_int_equal(rans_dec_init(&d, buf, 1 + 8 * ways + 2), -1); /* half a word */
			buf[1 + 3] = 0x7f;                                             /* state < RANS_L */
			assert_int_equal(rans_dec_init(&d, buf, 1 + 8 * ways), -1);
		}
	}
}

/* Every kernel set against the scalar one on the same parts (QCODE, QRES,
 * and FSYM of the same floats, and QDRV's codes derived from them), intact
 * and damaged: the same return code, and the same bytes whenever both succeed.
 * The weights are chosen to reach every branch of the vector paths: dense
 * Gaussian rows, ternary rows with ~88% zeros (QMoE-style, code 0 in most
 * lanes), rows of subnormals and rows cut at widths that are not multiples
 * of 8, in BF16, F16 and F32. */
static void test_kernels_agree(void **state)
{
	(void)state;
	const qs_dec_kernels *sets[8];
	size_t nsets = qs_dec_available(sets, 8);
	rans_recip *rc = qs_recip_table_new();
	qs_dec_scratch *ds = malloc(sizeof(*ds)), *ds2 = malloc(sizeof(*ds2));
	for (int trial = 0; trial < 36; trial++) {
		const qs_fmtinfo *f = qs_fmt_info(QS_FMT_BF16 + trial % 3);
		int kind = trial / 3 % 4;
		uint64_t cols = kind == 3 ? 1 + rnd() % 29 : 64 + rnd() % 2000, rows = 4 + 9000 / cols + rnd() % 8;
		uint64_t n = rows * cols;
		uint8_t *w = malloc(n * f->esize);
		uint32_t *sc = malloc(rows * 4);
		for (uint64_t r = 0; r < rows; r++) {
			uint32_t mx = 0;
			float a = (float)(0.01 + unif() * 0.05);
			for (uint64_t c = 0; c < cols; c++) {
				/* ternary rows, some with a dense stretch of codes that
				 * all need steps (no code 0: the zeros stay exact):
				 * sparse groups of 64 and dense ones meet in one row */
				float v = kind != 1 ? (float)(gauss() * 0.02)
					: r % 4 == 3 && c >= cols / 2 ? (float)((0.05 + 0.95 * unif()) * (rnd() & 1 ? a : -a))
					: rnd() % 100 < 88 ? 0.0f : rnd() & 1 ? a : -a;
				uint32_t b = from_f32(f, v);
				if (kind == 2 && rnd() % 3 == 0)
					b = (uint32_t)rnd() & ((1u << f->mant_bits) - 1);   /* subnormal */
				qs_store(f, w + (r * cols + c) * f->esize, b);
				if ((b & f->magmask) > mx) mx = b & f->magmask;
			}
			sc[r] = qs_scale_for(f, qs_to_f32(f, mx));
		}
		qs_enc_scratch *es = qs_enc_scratch_new(n, rc);
		int8_t *q = malloc(n), *q1 = malloc(n), *q2 = malloc(n);
		uint8_t *pa = malloc(n + QS_PART_SLACK + 1), *pb = malloc(n * f->esize + QS_PART_SLACK + 1);
		uint8_t *o1 = malloc(n * f->esize), *o2 = malloc(n * f->esize);
		size_t lb = enc_qres(es, f, w, n, 0, cols, sc, q, pb, NULL);
		size_t la = qs_enc_qcode(es, q, n, pa);
		uint8_t *pf = malloc(n * f->esize + QS_PART_SLACK + 1);
		size_t lf = qs_enc_fsym(es, f, w, n, pf);   /* the same floats stored once */
		assert_true(la > 0 && lb > 0 && lf > 0);
		for (size_t k = 0; k < nsets; k++) {   /* every set's FSYM encoder loop writes the same part */
			uint8_t *pk = malloc(n * f->esize + QS_PART_SLACK + 1);
			es->fsym_loop = qs_enc_fsym_loop_for(sets[k]->name);
			assert_int_equal(qs_enc_fsym(es, f, w, n, pk), lf);
			assert_memory_equal(pk, pf, lf);
			es->fsym_loop = qs_enc_fsym_loop;
			free(pk);
		}
		for (int dmg = 0; dmg < 6; dmg++) {
			if (dmg) {   /* damage one byte of each coded part */
				if (pa[0] != QS_CODEC_RAW) pa[1 + rnd() % (la - 1)] ^= (uint8_t)(1 + rnd() % 255);
				if (pb[0] == QS_CODEC_QRES) pb[1 + rnd() % (lb - 1)] ^= (uint8_t)(1 + rnd() % 255);
				if (pf[0] == QS_CODEC_FSYM) pf[1 + rnd() % (lf - 1)] ^= (uint8_t)(1 + rnd() % 255);
			}
			for (size_t k = 0; k < nsets; k++) {
				if (pf[0] == QS_CODEC_FSYM) {
					int r1 = sets[0]->fsym(ds, f, pf + 1, lf - 1, o1, n), r2 = sets[k]->fsym(ds2, f, pf + 1, lf - 1, o2, n);
					assert_int_equal(r1, r2);
					if (!r1) assert_memory_equal(o1, o2, n * f->esize);
					if (!dmg) assert_memory_equal(w, o2, n * f->esize);
				}
				qs_qtab_cache_reset(&ds->qcache);
				qs_qtab_cache_reset(&ds2->qcache);
				if (pa[0] != QS_CODEC_RAW) {   /* QCODE, or QTUP for the ternary rows */
					int r1 = qs_dec_codes(sets[0], ds, pa, la, q1, n), r2 = qs_dec_codes(sets[k], ds2, pa, la, q2, n);
					assert_int_equal(r1, r2);
					if (!r1) assert_memory_equal(q1, q2, n);
					if (!dmg) assert_memory_equal(q, q2, n);
				}
				if (pb[0] == QS_CODEC_QRES) {
					int r1 = sets[0]->qres(ds, f, pb + 1, lb - 1, q, n, 0, cols, sc, o1);
					int r2 = sets[k]->qres(ds2, f, pb + 1, lb - 1, q, n, 0, cols, sc, o2);
					assert_int_equal(r1, r2);
					if (!r1) assert_memory_equal(o1, o2, n * f->esize);
					if (!dmg) assert_memory_equal(w, o2, n * f->esize);
				}
				/* QDRV: the packer's codes from intact floats; the same codes from
				 * every set on floats and scales no packer writes */
				sets[k]->derive(f, w, n, 0, cols, sc, q2);
				if (!dmg) assert_memory_equal(q, q2, n);
				sets[0]->derive(f, w, n, 0, cols, sc, q1);
				assert_memory_equal(q1, q2, n);
			}
			if (dmg) {   /* damage the floats and the scales for the next round of QDRV */
				uint32_t sign = f->magmask + 1, inf = f->magmax + 1;
				const uint32_t odd[] = { 0, sign, inf, sign | inf, f->magmask, 1, f->magmax, sign | 0x1234 };
				qs_store(f, w + (rnd() % n) * f->esize, odd[rnd() % 8]);   /* Inf, NaN, huge, ... */
				qs_store(f, w + (rnd() % n) * f->esize, odd[rnd() % 8]);
				sc[rnd() % rows] = odd[rnd() % 8];
			}
		}
		qs_enc_scratch_free(es);
		free(w); free(sc); free(q); free(q1); free(q2); free(pa); free(pb); free(pf); free(o1); free(o2);
	}
	free(ds); free(ds2); free(rc);
}

/* ---- the quantiser and its buckets ---------------------------------------- */

static void test_buckets_match_quantiser(void **state)
{
	(void)state;
	for (int fmt = QS_FMT_BF16; fmt <= QS_FMT_F32; fmt++) {
		const qs_fmtinfo *f = qs_fmt_info(fmt);
		for (int trial = 0; trial < 40; trial++) {
			float absmax = (float)(unif() * 8 + 1e-4) * (trial % 5 == 0 ? 1e-30f : 1.0f);
			if (fmt == QS_FMT_F16 && trial % 5 == 0)
				absmax = 3e-6f;   /* a subnormal f16 scale */
			uint32_t sb = qs_scale_for(f, qs_to_f32(f, from_f32(f, absmax)));
			float s = qs_to_f32(f, sb);
			float am = qs_to_f32(f, from_f32(f, absmax));
			assert_true(am / s <= 127.5f);
			qs_qtab t;
			qs_qtab_build(f, sb, 0, &t);
			/* every magnitude (16-bit: all; f32: a sample) lands in its code's bucket */
			assert_int_equal(t.one[128], QS_QTAB_MANY);   /* code 0 is never one float */
			uint32_t limit = f->esize == 2 ? f->magmax + 1 : 200000;
			for (uint32_t k = 0; k < limit; k++) {
				uint32_t mag = f->esize == 2 ? k : (uint32_t)(rnd() % (f->magmax + 1));
				if (qs_to_f32(f, mag) > am)
					continue;
				for (int sign = 0; sign < 2; sign++) {
					float v = sign ? -qs_to_f32(f, mag) : qs_to_f32(f, mag);
					int q = qs_quant(v, s);
					if (!q) {
						assert_true(mag <= t.top0);
						continue;
					}
					assert_int_equal(q < 0, sign);
					const qs_bucket *b = &t.b[q + 128];
					assert_true(mag >= b->lo && mag - b->lo < b->n);
					/* a bucket of one float names it in one[] */
					assert_int_equal(t.one[q + 128], b->n == 1 ? (uint32_t)(sign ? f->magmask + 1 : 0) | mag
										     : QS_QTAB_MANY);
					/* dequantisation error is at most half a step, plus the
					 * rounding of the binary32 quotient (|v/s| <= 128, relative
					 * error 2^-24: 2^-17 of a step) */
					double err = (double)v - (double)q * (double)s, lim = (0.5 + 0x1p-16) * (double)s;
					if (!(err <= lim && err >= -lim))
						fail_msg("fmt %d absmax %g s %g mag %u v %g q %d err %g", fmt, (double)am, (double)s, mag,
							 (double)v, q, err);
				}
			}
		}
	}
}

/* ---- QCODE + QRES: random chunks of random tensors ---------------------------- */

static void test_quant_roundtrip(void **state)
{
	(void)state;
	rans_recip *rc = qs_recip_table_new();
	qs_dec_scratch *ds = malloc(sizeof(*ds));
	for (int trial = 0; trial < 60; trial++) {
		const qs_fmtinfo *f = qs_fmt_info(QS_FMT_BF16 + trial % 3);
		uint64_t cols = 1 + rnd() % (trial % 4 == 0 ? 5000 : 600), rows = 1 + rnd() % 40;
		uint64_t total = rows * cols, e0 = rnd() % total, n = 1 + rnd() % (total - e0);
		uint8_t *w = malloc(total * f->esize);
		uint32_t *sc = malloc(rows * 4);
		for (uint64_t r = 0; r < rows; r++) {
			double rs = 0.01 * (1 + 4 * unif()) * (r % 7 == 3 ? 1e-3 : 1);
			uint32_t mx = 0;
			for (uint64_t c = 0; c < cols; c++) {
				double x = gauss() * rs;
				if (rnd() % 100 == 0) x *= 8;
				uint32_t v = from_f32(f, (float)x);
				if (rnd() % 300 == 0) v = rnd() & 1 ? (1u << (f->esize * 8 - 1)) : 0;  /* +-0 */
				if (rnd() % 300 == 0) v = 1 + (uint32_t)(rnd() % 5);                /* subnormal */
				if (r % 11 == 5) v = 0;                                             /* zero row */
				qs_store(f, w + (r * cols + c) * f->esize, v);
				if ((v & f->magmask) > mx) mx = v & f->magmask;
			}
			sc[r] = qs_scale_for(f, qs_to_f32(f, mx));
		}
		const uint8_t *in = w + e0 * f->esize;
		const uint32_t *scr = sc + e0 / cols;
		qs_enc_scratch *es = qs_enc_scratch_new(n + 4, rc);
		int8_t *q = malloc(n), *q2 = malloc(n);
		uint8_t *pa = malloc(n + QS_PART_SLACK + 1), *pb = malloc(n * f->esize + QS_PART_SLACK + 1);
		uint8_t *out = malloc(n * f->esize);
		size_t lb = enc_qres(es, f, in, n, e0, cols, scr, q, pb, NULL);
		size_t la = qs_enc_qcode(es, q, n, pa);
		assert_true(la > 0 && lb > 0);
		qs_qtab_cache_reset(&ds->qcache);
		if (pa[0] == QS_CODEC_RAW)
			memcpy(q2, pa + 1, n);
		else
			assert_int_equal(qs_dec_codes(K, ds, pa, la, q2, n), 0);
		assert_memory_equal(q, q2, n);
		if (pb[0] == QS_CODEC_QRES)
			assert_int_equal(K->qres(ds, f, pb + 1, lb - 1, q2, n, e0, cols, scr, out), 0);
		else
			memcpy(out, pb + 1, n * f->esize);
		assert_memory_equal(in, out, n * f->esize);
		/* codes are the quantiser's */
		for (uint64_t i = 0; i < n; i++) {
			uint64_t r = (e0 + i) / cols;
			assert_int_equal(q[i], qs_quant(qs_to_f32(f, qs_load(f, in + i * f->esize)), qs_to_f32(f, sc[r])));
		}
		/* damage: flip bytes; decoding must fail or differ, never crash */
		if (pb[0] == QS_CODEC_QRES && lb > 64) {
			for (int k = 0; k < 8; k++) {
				size_t at = 1 + rnd() % (lb - 1);
				pb[at] ^= (uint8_t)(1 + rnd() % 255);
				int rcd = K->qres(ds, f, pb + 1, lb - 1, q2, n, e0, cols, scr, out);
				assert_true(rcd == -1 || rcd == 0);
			}
			assert_int_equal(K->qres(ds, f, pb + 1, 10, q2, n, e0, cols, scr, out), -1);
		}
		qs_enc_scratch_free(es);
		free(w); free(sc); free(q); free(q2); free(pa); free(pb); free(out);
	}
	free(ds);
	free(rc);
}

/* QTUP: codes from alphabets of 1..20 codes, skewed like ternary rows or
 * flat, in parts whose tuple counts reach the vector kernels (32 states
 * from 4096 tuples) or not, with n a multiple of m or not.  The packer must
 * choose tuples for few codes and QCODE for many, every kernel set must
 * decode the same codes, and damage to the header or the last tuple's
 * padding digits must be refused. */
static void test_qtup(void **state)
{
	(void)state;
	const qs_dec_kernels *sets[8];
	size_t nsets = qs_dec_available(sets, 8);
	rans_recip *rc = qs_recip_table_new();
	qs_dec_scratch *ds = malloc(sizeof(*ds));
	for (int trial = 0; trial < 40; trial++) {
		unsigned k = 1 + (unsigned)(trial % 20);
		size_t n = trial % 3 == 0 ? 1 + rnd() % 2000 : 40000 + rnd() % 60000;
		int skew = trial % 2;
		int8_t alpha[20], *q = malloc(n), *q2 = malloc(n);
		for (unsigned i = 0; i < k; i++)
			alpha[i] = (int8_t)(i == 0 ? 0 : (int)(rnd() % 255) - 127);
		for (size_t i = 0; i < n; i++)   /* skewed: code 0 (alphabet entry 0) 88% of the time */
			q[i] = alpha[skew ? (rnd() % 100 < 88 ? 0 : rnd() % k) : rnd() % k];
		qs_enc_scratch *es = qs_enc_scratch_new(n + 4, rc);
		uint8_t *pa = malloc(n + QS_PART_SLACK + 1);
		size_t la = qs_enc_qcode(es, q, n, pa);
		unsigned distinct = 0;
		for (int c = -128; c < 128; c++)
			distinct += memchr(q, c, n) != NULL;
		if (distinct > 16)
			assert_int_not_equal(pa[0], QS_CODEC_QTUP);
		if (distinct == 3 && skew && n >= 40000)
			assert_int_equal(pa[0], QS_CODEC_QTUP);   /* ternary-like */
		if (pa[0] == QS_CODEC_QTUP)
			assert_true(pa[1] >= 2 && pa[2] == distinct);
		for (size_t j = 0; j < nsets; j++) {
			memset(q2, 0x55, n);
			if (pa[0] == QS_CODEC_RAW)
				memcpy(q2, pa + 1, n);
			else
				assert_int_equal(qs_dec_codes(sets[j], ds, pa, la, q2, n), 0);
			assert_memory_equal(q, q2, n);
		}
		if (pa[0] != QS_CODEC_QTUP)
			goto next;
		/* the header: m or k out of range, k^m above 256, the alphabet out of order */
		const uint8_t m0 = pa[1], k0 = pa[2], bad[][2] = { { 1, k0 }, { 9, k0 }, { m0, 0 }, { m0, 17 }, { 8, 3 }, { 5, 4 } };
		for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
			pa[1] = bad[b][0];
			pa[2] = bad[b][1];
			for (size_t j = 0; j < nsets; j++)
				assert_int_equal(qs_dec_codes(sets[j], ds, pa, la, q2, n), -1);
		}
		pa[1] = m0;
		pa[2] = k0;
		if (k0 >= 2) {
			uint8_t a1 = pa[4];
			pa[4] = pa[3];   /* a[1] = a[0] */
			for (size_t j = 0; j < nsets; j++)
				assert_int_equal(qs_dec_codes(sets[j], ds, pa, la, q2, n), -1);
			pa[4] = a1;
		}
		/* one code fewer: the last tuple then holds a digit past n (unless
		 * that code was alphabet entry 0), which must be refused */
		if (n % m0 != 1 && (uint8_t)(q[n - 1] + 128) != pa[3])
			for (size_t j = 0; j < nsets; j++)
				assert_int_equal(qs_dec_codes(sets[j], ds, pa, la, q2, n - 1), -1);
	next:
		qs_enc_scratch_free(es);
		free(q); free(q2); free(pa);
	}
	free(ds);
	free(rc);
}

/* FP16/F32 checkpoints made from BF16 carry 3 / 16 trailing zero mantissa
 * bits: the codecs must not pay for them. */
static void test_trailing_zero_mantissas(void **state)
{
	(void)state;
	rans_recip *rc = qs_recip_table_new();
	qs_dec_scratch *ds = malloc(sizeof(*ds));
	for (int fmt = QS_FMT_F16; fmt <= QS_FMT_F32; fmt++) {
		const qs_fmtinfo *f = qs_fmt_info(fmt);
		unsigned zeros = fmt == QS_FMT_F16 ? 3 : 16;
		uint64_t rows = 24, cols = 700, n = rows * cols;
		uint8_t *w = malloc(n * f->esize), *out = malloc(n * f->esize);
		uint32_t *sc = malloc(rows * 4);
		for (uint64_t r = 0; r < rows; r++) {
			uint32_t mx = 0;
			for (uint64_t c = 0; c < cols; c++) {
				uint32_t v = from_f32(f, (float)(gauss() * 0.03)) & ~((1u << zeros) - 1);
				qs_store(f, w + (r * cols + c) * f->esize, v);
				mx = (v & f->magmask) > mx ? v & f->magmask : mx;
			}
			sc[r] = qs_scale_for(f, qs_to_f32(f, mx));
		}
		qs_enc_scratch *es = qs_enc_scratch_new(n + 4, rc);
		int8_t *q = malloc(n), *q2 = malloc(n);
		uint8_t *pa = malloc(n + QS_PART_SLACK + 1), *pb = malloc(n * f->esize + QS_PART_SLACK + 1);
		size_t lb = enc_qres(es, f, w, n, 0, cols, sc, q, pb, NULL);
		size_t la = qs_enc_qcode(es, q, n, pa);
		assert_int_equal(pb[0], QS_CODEC_QRES);
		assert_int_equal(pb[1], zeros);
		/* about what the same data costs without the zero bits */
		double bits = 8.0 * (double)(la + lb) / (double)n;
		assert_true(bits < 16.0 * f->esize / 2 - zeros + 3);
		qs_qtab_cache_reset(&ds->qcache);
		if (pa[0] == QS_CODEC_RAW)
			memcpy(q2, pa + 1, n);
		else
			assert_int_equal(qs_dec_codes(K, ds, pa, la, q2, n), 0);
		assert_int_equal(K->qres(ds, f, pb + 1, lb - 1, q2, n, 0, cols, sc, out), 0);
		assert_memory_equal(w, out, n * f->esize);
		/* and stored once, as a plain float tensor */
		size_t lf = qs_enc_fsym(es, f, w, n, pb);
		assert_int_equal(pb[0], QS_CODEC_FSYM);
		assert_int_equal(pb[1], zeros);
		assert_int_equal(K->fsym(ds, f, pb + 1, lf - 1, out, n), 0);
		assert_memory_equal(w, out, n * f->esize);
		/* a hostile shift byte is refused */
		pb[1] = (uint8_t)(f->mant_bits + 1);
		assert_int_equal(K->fsym(ds, f, pb + 1, lf - 1, out, n), -1);
		qs_enc_scratch_free(es);
		free(w); free(out); free(sc); free(q); free(q2); free(pa); free(pb);
	}
	free(ds);
	free(rc);
}

/* The packer picks a QUANT chunk's coding from qs_enc_quantise's estimates:
 * they must track what the coders then write (within 0.5%) and order the
 * two codings as their real sizes do: Gaussian rows of one width (about a
 * tie), of widths spread 6x (codes + residual win: the row scale models the
 * spread), and ternary rows (codes + residual by far: the floats' mantissas
 * would cost 7 bits per nonzero weight). */
static void test_quant_estimates(void **state)
{
	(void)state;
	rans_recip *rc = qs_recip_table_new();
	const qs_fmtinfo *f = qs_fmt_info(QS_FMT_BF16);
	uint64_t rows = 64, cols = 1024, n = rows * cols;
	uint8_t *w = malloc(n * 2), *pa = malloc(n + QS_PART_SLACK + 1), *pb = malloc(2 * n + QS_PART_SLACK + 1);
	uint32_t *sc = malloc(rows * 4);
	int8_t *q = malloc(n);
	qs_enc_scratch *es = qs_enc_scratch_new(n, rc);
	for (int kind = 0; kind < 3; kind++) {
		int ternary = kind == 2;
		for (uint64_t r = 0; r < rows; r++) {
			uint32_t mx = 0;
			float a = kind == 0 ? 0.02f : (float)(0.01 + unif() * 0.05);
			for (uint64_t c = 0; c < cols; c++) {
				float v = ternary ? (rnd() % 100 < 88 ? 0.0f : rnd() & 1 ? a : -a) : (float)(gauss() * a);
				uint32_t b = from_f32(f, v);
				qs_store(f, w + (r * cols + c) * 2, b);
				mx = (b & f->magmask) > mx ? b & f->magmask : mx;
			}
			sc[r] = qs_scale_for(f, qs_to_f32(f, mx));
		}
		qs_quant_est est;
		size_t lb = enc_qres(es, f, w, n, 0, cols, sc, q, pb, &est);
		size_t la = qs_enc_qcode(es, q, n, pa);
		size_t lf = qs_enc_fsym(es, f, w, n, pb);
		double stored = 8.0 * (double)(la + lb), derived = 8.0 * (double)lf;
		assert_true(fabs(est.stored - stored) < 0.005 * stored + 8 * 2048);
		assert_true(fabs(est.derived - derived) < 0.005 * derived + 8 * 2048);
		if (fabs(stored - derived) > 0.005 * stored)
			assert_int_equal(est.stored < est.derived, stored < derived);
		if (ternary)
			assert_true(est.stored * 2 < est.derived);
	}
	qs_enc_scratch_free(es);
	free(w); free(pa); free(pb); free(sc); free(q); free(rc);
}

static void test_freqtab_rejects_garbage(void **state)
{
	(void)state;
	ft_dec_entry *tab = malloc(sizeof(ft_dec_entry) * FT_M);
	uint8_t buf[64];
	int empty;
	for (int k = 0; k < 20000; k++) {
		size_t len = rnd() % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rnd();
		size_t used = ft_read(buf, len, 1 + rnd() % 600, tab, &empty);
		assert_true(used <= len);
	}
	uint32_t counts[300] = { 0 };
	counts[5] = 1000000; counts[7] = 1; counts[299] = 3;
	ft_enc t;
	ft_build(counts, 300, &t);
	assert_int_equal(t.freq[5] + t.freq[7] + t.freq[299], FT_M);
	assert_true(t.freq[7] >= 1 && t.freq[299] >= 1);
	uint8_t *ser = malloc(FT_MAX_SERIAL);
	size_t w = ft_write(&t, ser);
	assert_int_equal(ft_read(ser, w, 300, tab, &empty), w);
	assert_int_equal(ft_read(ser, w - 1, 300, tab, &empty), 0);
	free(ser);
	free(tab);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recip_exact),
		cmocka_unit_test(test_uniform_slots_exact),
		cmocka_unit_test(test_fsym_roundtrip),
		cmocka_unit_test(test_fsym_joint_boundary),
		cmocka_unit_test(test_stream_header_checked),
		cmocka_unit_test(test_kernels_agree),
		cmocka_unit_test(test_buckets_match_quantiser),
		cmocka_unit_test(test_quant_roundtrip),
		cmocka_unit_test(test_qtup),
		cmocka_unit_test(test_trailing_zero_mantissas),
		cmocka_unit_test(test_quant_estimates),
		cmocka_unit_test(test_freqtab_rejects_garbage),
	};
	const qs_dec_kernels *sets[8];
	size_t n = qs_dec_available(sets, 8);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		char name[64];
		K = sets[i];
		snprintf(name, sizeof(name), "codec (%s decoders)", K->name);
		failed |= cmocka_run_group_tests_name(name, tests, NULL, NULL);
	}
	return failed;
}
