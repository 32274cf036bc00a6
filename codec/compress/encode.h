/* encode.h - the chunk part encoders (FORMAT.md "chunk parts"). */
#ifndef QS_ENCODE_H
#define QS_ENCODE_H

#include "../common/codecs.h"
#include "../common/quantise.h"

/* An FSYM part's symbol under top = all ones: its mantissa count n (w =
 * log2 n when a power of two, else 64), first magnitude and shift. */
typedef struct fsym_enc_desc {
	uint64_t n;
	uint32_t first;
	unsigned w, shift;
} fsym_enc_desc;

struct qs_enc_scratch;
/* An FSYM part's elements [0, n), backwards, into e: the portable loop, or
 * a SIMD one that gives the same stream (float_enc_avx512.c). */
typedef void (*qs_enc_fsym_fn)(struct qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n,
			       rans_enc *e);

/* Per-thread encoder scratch, sized for chunks of up to max_elems elements. */
typedef struct qs_enc_scratch {
	size_t max_elems;
	uint32_t *words;          /* rANS output, 3 words per element + slack */
	size_t n_words;
	uint32_t counts[FT_MAX_SYMS];
	uint32_t counts4[4][FT_MAX_SYMS];   /* qs_enc_fsym's count pass */
	uint32_t fcounts[FT_MAX_SYMS];   /* qs_enc_quantise's sample: sign+exponent symbols */
	uint32_t qcounts[256];           /* qs_enc_quantise's sample: the codes */
	uint32_t tcounts[QS_QTUP_MAX_SYMS];   /* qs_enc_qcode's sample: QTUP tuples */
	uint32_t lg8[256];               /* quant_pass.c: log2(1 + i/256), 2^-16 bits */
	ft_enc ft;
	fsym_enc_desc sdesc[FT_MAX_SYMS];
	const rans_recip *recip;  /* shared, read-only: [0, 2^16] */
	qs_qtab_cache qcache;
	qs_quantise_fn quantise;         /* the portable one unless the packer sets another */
	qs_enc_fsym_fn fsym_loop;        /* likewise */
	uint64_t fsym_vec[FT_MAX_SYMS];  /* float_enc_avx512.c: each symbol's step, packed */
} qs_enc_scratch;

/* The encoder's kernels, of the set the decoders use (pack.c). */
typedef struct qs_enc_kernels {
	qs_quantise_fn quantise;
	qs_enc_fsym_fn fsym_loop;
} qs_enc_kernels;
/* The loops by kernel set name ("scalar", "avx512"); the portable ones for
 * any other name. */
qs_enc_fsym_fn qs_enc_fsym_loop_for(const char *set);
void qs_enc_fsym_loop(struct qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, rans_enc *e);
void qs_enc_fsym_loop_avx512(struct qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n,
			     rans_enc *e);

/* Element i of an FSYM part (its symbol desc in s->sdesc, table in s->ft):
 * one joint step when its mantissa count is 2^w with w <= 19, else the
 * symbol followed by count(n) (FORMAT.md "Sign+exponent symbols").  The
 * state is element i's, i mod ways. */
static inline void qs_enc_put_sym_mant(rans_enc *e, unsigned way, const ft_enc *ft, uint32_t sym, uint32_t v,
				       uint64_t count, unsigned w)
{
	if (w <= RANS_JOINT_MAX_BITS) {
		rans_put(e, way, (v << FT_BITS) + ft->start[sym], ft->freq[sym], FT_BITS + w);
		return;
	}
	rans_put_count(e, way, v, count);
	rans_put(e, way, ft->start[sym], ft->freq[sym], FT_BITS);
}

static inline void qs_enc_fsym_one(const qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t i,
				   rans_enc *e)
{
	uint32_t base, bits = qs_load(f, in + i * f->esize), y = qs_fsym(f, bits, &base);
	const fsym_enc_desc *d = &s->sdesc[y];
	qs_enc_put_sym_mant(e, (unsigned)(i & (e->ways - 1)), &s->ft, y, ((bits & f->magmask) >> d->shift) - d->first,
			    d->n, d->w);
}

qs_enc_scratch *qs_enc_scratch_new(size_t max_elems, const rans_recip *recip);
void qs_enc_scratch_free(qs_enc_scratch *s);
/* The reciprocal table every encoder thread shares (65537 entries). */
rans_recip *qs_recip_table_new(void);

/* Each encoder writes a whole part (tag included) into out, which has room
 * for 1 + raw size + QS_PART_SLACK bytes, and returns its length (0 on an
 * internal inconsistency).  It falls back to RAW whenever that is smaller. */
size_t qs_enc_fsym(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint8_t *out);
size_t qs_enc_qcode(qs_enc_scratch *s, const int8_t *q, size_t n, uint8_t *out);

/* The two ways to store a QUANT chunk, in estimated bits (quant_pass.c). */
typedef struct qs_quant_est {
	double stored;     /* QCODE + QRES */
	double derived;    /* QDRV + FSYM */
	unsigned shift;    /* the chunk's shift (FORMAT.md section 3) */
} qs_quant_est;
void qs_enc_lg_init(uint32_t lg8[256]);
/* Estimated bits of a coded part (quant_pass.c): its symbols under the
 * 12-bit table ft_build makes of COUNTS (left in *ft), and everything else
 * (tag, states, about 12 bits of table per symbol present). */
double qs_enc_table_bits(const uint32_t *counts, uint32_t nsym, ft_enc *ft);
double qs_enc_part_bits(size_t n, const uint32_t *counts, uint32_t nsym);
/* The first pass over a QUANT chunk: the codes of in[0..n) (elements e0..
 * of a tensor with `cols` columns; scales[r] is the scale of row e0/cols + r)
 * into q, the chunk's shift and both codings' estimated costs into est. */
void qs_enc_quantise(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0,
		     uint64_t cols, const uint32_t *scales, int8_t *q, qs_quant_est *est);
/* After qs_enc_quantise of the same chunk, part B when the codes are
 * stored: the residual given the codes q (part A is then qs_enc_qcode).
 * When they are derived, part B is qs_enc_fsym of the floats and part A the
 * one byte QDRV. */
size_t qs_enc_qres(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint64_t e0,
		   uint64_t cols, const uint32_t *scales, const int8_t *q, unsigned shift, uint8_t *out);

#endif
