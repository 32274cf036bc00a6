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

/* What FSYM decodes after each sign+exponent symbol, worked out once per
 * part instead of once per element: the float's fixed high bits, the first
 * mantissa value and how the rest is coded (FORMAT.md "Sign+exponent
 * symbols" with top = all ones). */
enum { FD_BAD = 0, FD_ONE, FD_BITS, FD_UNIFORM, FD_COUNT };
typedef struct fsym_desc {
	uint32_t hi;             /* sign bit in place */
	uint32_t first, n;       /* magnitudes (first + v) << shift, v < n */
	uint8_t kind, k, shift;  /* FD_*; k for FD_BITS */
	uint64_t step;           /* FD_UNIFORM: rans_step_make(n) */
} fsym_desc;

/* Per-thread decoder scratch. */
typedef struct qs_dec_scratch {
	fsym_desc fdesc[FT_MAX_SYMS];
	ft_dec_entry tab[FT_M];
	qs_qtab_cache qcache;
} qs_dec_scratch;

/* Decoders return 0, or -1 if the part is malformed (the caller names it). */
int qs_dec_fsym(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n);
int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out);


typedef struct qs_dec_kernels {
	const char *name;          /* "scalar", ... */
	int (*fsym)(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n);
	int (*qcode)(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
	int (*qres)(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		    size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out);
} qs_dec_kernels;

/* The best kernel set this CPU runs (or the one QSTORE_SIMD names). */
const qs_dec_kernels *qs_dec_select(void);
/* Every kernel set this CPU can run, best last; returns how many. */
size_t qs_dec_available(const qs_dec_kernels **out, size_t max);

#endif
