/*
 * decode.h - the chunk part decoders (FORMAT.md "chunk parts"), reached
 * through a table of kernels chosen once per reader: the portable scalar
 * kernels are always there; a SIMD set joins them when the CPU has it
 * (cpuid at run time) and must produce identical bytes.  QSTORE_SIMD=scalar
 * in the environment forces the portable set (tests run every set the
 * machine can).
 */
#ifndef QS_DECODE_H
#define QS_DECODE_H

#include "../common/codecs.h"
#include "../common/quantise.h"

/* What one slot of a 16-bit FSYM part decodes to, worked out once per part
 * (float_dec.c): the symbol's rANS entry, its mantissa width w and shift,
 * and the float's fixed bits (sign and first magnitude). */
typedef struct fsym_fast {
	uint16_t freq, bias, base;
	uint8_t w, shift;
} fsym_fast;

/* Per-thread decoder scratch. */
typedef struct qs_dec_scratch {
	fsym_fast ffast[FT_M];
	uint64_t zdesc[FT_MAX_SYMS];   /* float_dec_avx512.c: code-0 symbols */
	ft_dec_entry tab[FT_M];
	uint64_t tup[QS_QTUP_MAX_SYMS];   /* QTUP: each tuple's codes as bytes */
	qs_qtab_cache qcache;
} qs_dec_scratch;

/* Decoders return 0, or -1 if the part is malformed (the caller names it). */
int qs_dec_fsym(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n);
int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
int qs_dec_qtup(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out);

/* The same with AVX-512 F/DQ/VL/BW (float_dec_avx512.c); F32 parts and
 * parts of fewer than 8 states go to the scalar kernels. */
int qs_dec_fsym_avx512(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n);
int qs_dec_qcode_avx512(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
int qs_dec_qtup_avx512(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
int qs_dec_qres_avx512(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		       size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out);

/* The INT4 view (lowface.c, FORMAT.md 7.1) over NE codes, whole groups of
 * QS_INT4_GROUP: the largest |code| of each group into GM; the codes packed
 * two a byte (code + 8, low nibble first) into OUT (NE / 2 bytes) given GM. */
void qs_low_max4(const int8_t *q, size_t ne, uint8_t *gm);
void qs_low_pack4(const int8_t *q, size_t ne, const uint8_t *gm, uint8_t *out);
void qs_low_max4_avx512(const int8_t *q, size_t ne, uint8_t *gm);
void qs_low_pack4_avx512(const int8_t *q, size_t ne, const uint8_t *gm, uint8_t *out);

typedef struct qs_dec_kernels {
	const char *name;          /* "scalar", ... */
	int (*fsym)(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n);
	int (*qcode)(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
	int (*qtup)(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
	int (*qres)(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		    size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out);
	qs_quantise_fn derive;     /* QDRV: the codes from the floats */
	void (*max4)(const int8_t *q, size_t ne, uint8_t *gm);
	void (*pack4)(const int8_t *q, size_t ne, const uint8_t *gm, uint8_t *out);
} qs_dec_kernels;

/* A coded part A of n INT8 codes, tag included: QCODE or QTUP through K's
 * kernels; -1 for any other tag or a malformed part. */
int qs_dec_codes(const qs_dec_kernels *k, qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);

/* The best kernel set this CPU runs (or the one QSTORE_SIMD names). */
const qs_dec_kernels *qs_dec_select(void);
/* Every kernel set this CPU can run, best last; returns how many. */
size_t qs_dec_available(const qs_dec_kernels **out, size_t max);

#endif
