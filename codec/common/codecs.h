/*
 * codecs.h - the chunk part codecs (FORMAT.md "chunk parts"): their tags.
 * Encoders are declared in compress/encode.h, decoders in decompress/decode.h.
 *
 * Every chunk part starts with one tag byte naming its codec:
 *   RAW    the decoded bytes verbatim (fallback when coding does not pay);
 *   ZSTD   one zstd frame (opaque bytes: headers, config, integer tensors);
 *   FSYM   a float tensor stored once: rANS over sign+exponent symbols, the
 *          mantissa coded uniformly, in the same step when it is a power-of-
 *          two count (ZipNN's observation, done at entropy);
 *   QCODE  INT8 codes: rANS order-0 over q+128;
 *   QRES   the high-precision floats given their INT8 codes and row scales:
 *          code != 0: the position inside the row's bucket, uniform over the
 *          bucket's exact size; code 0: sign+exponent symbol + mantissa;
 *   QTUP   INT8 codes of a chunk that uses few of them (ternary, sparse):
 *          rANS order-0 over tuples of m consecutive codes, one step per
 *          tuple instead of per code, at the same order-0 cost;
 *   QDRV   INT8 codes not stored: part B holds the floats (FSYM or RAW) and
 *          the codes are the quantiser's, computed from them.  Both are the
 *          same information (the codes are a function of the floats); the
 *          packer takes whichever pair of parts is smaller.  QDRV trades a
 *          faster high view (one rANS step per weight) for a slower INT8 one.
 */
#ifndef QS_CODECS_H
#define QS_CODECS_H

#include <stddef.h>
#include <stdint.h>

#include "floatfmt.h"
#include "freqtab.h"
#include "rans.h"

/* QTUP's tuple: m codes (2 <= m <= QS_QTUP_MAX_M) from an alphabet of k of
 * them (1 <= k <= 16), k^m <= QS_QTUP_MAX_SYMS table symbols. */
#define QS_QTUP_MAX_M 8
#define QS_QTUP_MAX_SYMS 256

/* A part is never larger than RAW (tag + decoded bytes) plus this slack for
 * the frequency tables: encoders get that much room, the index validator
 * refuses anything longer. */
#define QS_PART_SLACK (FT_MAX_SERIAL + 64)

enum qs_codec { QS_CODEC_RAW = 0, QS_CODEC_ZSTD = 1, QS_CODEC_FSYM = 2, QS_CODEC_QCODE = 3, QS_CODEC_QRES = 4,
	       QS_CODEC_QDRV = 5, QS_CODEC_QTUP = 6 };

#endif
