/*
 * codecs.h - the chunk part codecs (FORMAT.md "chunk parts").
 *
 * Every chunk part starts with one tag byte naming its codec:
 *   RAW    the decoded bytes verbatim (fallback when coding does not pay);
 *   ZSTD   one zstd frame (opaque bytes: headers, config, integer tensors);
 *   FSYM   a float tensor stored once: rANS over sign+exponent symbols, the
 *          mantissa coded uniformly (ZipNN's observation, done at entropy);
 *   QCODE  INT8 codes: rANS order-0 over q+128;
 *   QRES   the high-precision floats given their INT8 codes and row scales:
 *          code != 0: the position inside the row's bucket, uniform over the
 *          bucket's exact size; code 0: sign+exponent symbol + mantissa.
 */
#ifndef QS_CODECS_H
#define QS_CODECS_H

#include <stddef.h>
#include <stdint.h>

#include "floatfmt.h"
#include "freqtab.h"
#include "rans.h"

enum qs_codec { QS_CODEC_RAW = 0, QS_CODEC_ZSTD = 1, QS_CODEC_FSYM = 2, QS_CODEC_QCODE = 3, QS_CODEC_QRES = 4 };

/* Per-thread encoder scratch, sized for chunks of up to max_elems elements. */
typedef struct qs_enc_scratch {
	size_t max_elems;
	uint32_t *words;          /* rANS output, 3 words per element + slack */
	size_t n_words;
	uint32_t counts[FT_MAX_SYMS];
	ft_enc ft;
	const rans_recip *recip;  /* shared, read-only: [0, 2^16] */
	qs_qtab_cache qcache;
} qs_enc_scratch;

qs_enc_scratch *qs_enc_scratch_new(size_t max_elems, const rans_recip *recip);
void qs_enc_scratch_free(qs_enc_scratch *s);
/* The reciprocal table every encoder thread shares (65537 entries). */
rans_recip *qs_recip_table_new(void);

/* Each encoder writes a whole part (tag included) into out, which has room
 * for 1 + raw size + QS_PART_SLACK bytes, and returns its length (0 on an
 * internal inconsistency).  It falls back to RAW whenever that is smaller. */
#define QS_PART_SLACK (FT_MAX_SERIAL + 64)
size_t qs_enc_fsym(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n, uint8_t *out);
size_t qs_enc_qcode(qs_enc_scratch *s, const int8_t *q, size_t n, uint8_t *out);
/* Computes the codes of in[0..n) (elements e0.. of a tensor with `cols`
 * columns; scales[r] is the scale of row e0/cols + r) into q, then the
 * residual part into out. */
size_t qs_enc_qres(qs_enc_scratch *s, const qs_fmtinfo *f, const uint8_t *in, size_t n,
		   uint64_t e0, uint64_t cols, const uint32_t *scales, int8_t *q, uint8_t *out);

/* Per-thread decoder scratch. */
typedef struct qs_dec_scratch {
	ft_dec_entry tab[FT_M];
	qs_qtab_cache qcache;
} qs_dec_scratch;

/* Decoders return 0, or -1 if the part is malformed (the caller names it). */
int qs_dec_fsym(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n);
int qs_dec_qcode(qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n);
int qs_dec_qres(qs_dec_scratch *s, const qs_fmtinfo *f, const uint8_t *p, size_t len, const int8_t *q,
		size_t n, uint64_t e0, uint64_t cols, const uint32_t *scales, uint8_t *out);

#endif
