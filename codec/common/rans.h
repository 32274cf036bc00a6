/*
 * rans.h - the entropy coder every float codec shares.
 *
 * Range asymmetric numeral systems (Duda) with a 64-bit state and 32-bit
 * renormalisation words, four states interleaved so that consecutive symbols
 * do not wait on each other.  The state x always lies in [RANS_L, RANS_L<<32).
 *
 * A symbol is (start, freq) out of a total of 2^bits, bits <= 16.  Three
 * kinds of symbol use it:
 *   - table symbols: frequencies normalised to 2^12 (freqtab.c);
 *   - uniform symbols: a value in [0, n) with n <= 2^16, each value given
 *     the slots from floor(i * 2^16 / n) (see rans_step_make); this is how the
 *     position of a float inside its INT8 bucket is coded, at log2(n) bits
 *     to within 1e-4 bit;
 *   - raw pieces of k <= 16 bits (freq 1 out of 2^k): just shifts.
 *
 * Why not a fixed power-of-two alphabet everywhere: the number of float values
 * that round to one INT8 code depends on the row's scale, and coding that
 * position with the exact n of the row is what keeps the residual at the
 * information limit (BRIEF.md: keyed on q alone it costs +23%).
 *
 * Stream layout (FORMAT.md "rANS streams"): 4 x u64 initial decoder states,
 * 4 x u32 word counts, then each state's u32 words in the order its decoder
 * consumes them (one word stream per state, so that refilling one state
 * never waits on another's pointer).  The encoder starts every state at
 * RANS_L; the decoder must end with all four back at RANS_L and every word
 * consumed, which catches most damage before the checksum does.  The
 * decoding loops live in decompress/float_dec.c, specialised per codec.
 */
#ifndef QS_RANS_H
#define QS_RANS_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define RANS_L (1ull << 31)
#define RANS_WAYS 4
#define RANS_UNIFORM_BITS 16
#define RANS_UNIFORM_MAX (1u << RANS_UNIFORM_BITS)

/* ---- exact division by a reciprocal ------------------------------------
 * Encoder: floor(x / d) for x < 2^63 and 1 <= d <= 2^16 without a divide:
 * m = ceil(2^(63+l) / d) with l = ceil(log2 d) gives floor(x/d) =
 * mulhi(x, m) >> (l - 1) (Granlund & Montgomery 1994, Thm 4.2 with N = 63). */
typedef struct { uint64_t m; uint32_t sh; } rans_recip;

static inline rans_recip rans_recip_make(uint32_t d)
{
	rans_recip r = { 0, 0 };
	if (d <= 1)
		return r; /* m = 0 marks d == 1 */
	uint32_t l = 0;
	while ((1ull << l) < d)
		l++;
	unsigned __int128 num = (unsigned __int128)1 << (63 + l);
	r.m = (uint64_t)((num + d - 1) / d);
	r.sh = l - 1;
	return r;
}

static inline uint64_t rans_recip_div(uint64_t x, rans_recip r)
{
	if (!r.m)
		return x;
	return (uint64_t)(((unsigned __int128)x * r.m) >> 64) >> r.sh;
}

/* Uniform symbols: value v in [0, n), n <= 2^16, owns the slots
 * [start(v), start(v+1)) with start(v) = floor(v * 2^16 / n), computed as
 * (v * step) >> 32 with step = ceil(2^48 / n): exact for 0 <= v <= n <= 2^16
 * (the rounding error v*(step - 2^48/n)/2^32 < 2^-16 <= 1/n never crosses an
 * integer; FORMAT.md).  The decoder inverts it without dividing:
 * v = ((slot + 1) * n - 1) >> 16. */
static inline uint64_t rans_step_make(uint32_t n) { return n ? ((1ull << 48) + n - 1) / n : 0; }
static inline uint32_t rans_uniform_start(uint32_t v, uint64_t step) { return (uint32_t)((v * step) >> 32); }

/* ---- encoder ---------------------------------------------------------- */

typedef struct rans_enc {
	uint64_t x[RANS_WAYS];
	/* each state has its own word stream, written backwards: a decoder
	 * refilling one state then never waits on another's pointer */
	uint32_t *ptr[RANS_WAYS], *lim[RANS_WAYS], *top[RANS_WAYS];
	int overflow;
	const rans_recip *recip; /* recip[f] for f in [1, 2^16] */
} rans_enc;

/* buf holds RANS_WAYS regions of `words` words each */
static inline void rans_enc_init(rans_enc *e, uint32_t *buf, size_t words, const rans_recip *recip)
{
	for (int i = 0; i < RANS_WAYS; i++) {
		e->x[i] = RANS_L;
		e->lim[i] = buf + i * words;
		e->top[i] = e->ptr[i] = buf + (i + 1) * words;
	}
	e->overflow = 0;
	e->recip = recip;
}

static inline void rans_put(rans_enc *e, int way, uint32_t start, uint32_t freq, unsigned bits)
{
	uint64_t x = e->x[way];
	uint64_t xmax = ((RANS_L >> bits) << 32) * freq;
	if (x >= xmax) {
		if (e->ptr[way] == e->lim[way]) {
			e->overflow = 1;
			return;
		}
		*--e->ptr[way] = (uint32_t)x;
		x >>= 32;
	}
	uint64_t q = rans_recip_div(x, e->recip[freq]);
	e->x[way] = (q << bits) + (x - q * freq) + start;
}

/* value in [0, 2^k), k <= 16: raw bits, no division */
static inline void rans_put_bits(rans_enc *e, int way, uint32_t v, unsigned k)
{
	if (k)
		rans_put(e, way, v, 1, k);
}

/* value in [0, n), 2 <= n <= 2^16, step = rans_step_make(n) */
static inline void rans_put_uniform(rans_enc *e, int way, uint32_t v, uint64_t step)
{
	uint32_t start = rans_uniform_start(v, step);
	rans_put(e, way, start, rans_uniform_start(v + 1, step) - start, RANS_UNIFORM_BITS);
}

static inline unsigned rans_log2_exact(uint64_t n) /* k if n == 2^k, else 64 */
{
	return n && !(n & (n - 1)) ? (unsigned)__builtin_ctzll(n) : 64;
}

/* value in [0, n) for any 1 <= n <= 2^32.  Powers of two are raw bits; above
 * 2^16 the value is split into a uniform high part and 16 raw low bits (the
 * decoder rejects a result >= n). */
static inline void rans_put_count(rans_enc *e, int way, uint32_t v, uint64_t n)
{
	unsigned k = rans_log2_exact(n);
	if (k <= 16) {
		rans_put_bits(e, way, v, k);
	} else if (n <= RANS_UNIFORM_MAX) {
		rans_put_uniform(e, way, v, rans_step_make((uint32_t)n));
	} else {
		rans_put_bits(e, way, v & 0xffff, 16);   /* reverse order: low first */
		rans_put_count(e, way, v >> 16, ((n - 1) >> 16) + 1);
	}
}

#define RANS_HEADER_BYTES (RANS_WAYS * 12)

/* Write the stream (states, word counts, each state's words) into out, which
 * has room for cap bytes.  Returns its length, or 0 on overflow / no room. */
static inline size_t rans_enc_finish(rans_enc *e, uint8_t *out, size_t cap)
{
	size_t len = RANS_HEADER_BYTES;
	if (e->overflow)
		return 0;
	for (int i = 0; i < RANS_WAYS; i++)
		len += (size_t)(e->top[i] - e->ptr[i]) * 4;
	if (len > cap)
		return 0;
	uint8_t *o = out + RANS_HEADER_BYTES;
	for (int i = 0; i < RANS_WAYS; i++) {
		uint32_t lo = (uint32_t)e->x[i], hi = (uint32_t)(e->x[i] >> 32);
		uint32_t nw = (uint32_t)(e->top[i] - e->ptr[i]);
		memcpy(out + 8 * i, &lo, 4);
		memcpy(out + 8 * i + 4, &hi, 4);
		memcpy(out + 8 * RANS_WAYS + 4 * i, &nw, 4);
		memcpy(o, e->ptr[i], (size_t)nw * 4);
		o += (size_t)nw * 4;
	}
	return len;
}

/* ---- decoder ---------------------------------------------------------- */

typedef struct rans_dec {
	uint64_t x[RANS_WAYS];
	const uint8_t *ptr[RANS_WAYS], *end[RANS_WAYS];
} rans_dec;

/* Parse the stream header; every word count is checked against len. */
static inline int rans_dec_init(rans_dec *d, const uint8_t *p, size_t len)
{
	if (len < RANS_HEADER_BYTES)
		return -1;
	uint64_t words = 0;
	const uint8_t *w = p + RANS_HEADER_BYTES;
	for (int i = 0; i < RANS_WAYS; i++) {
		uint32_t lo, hi, nw;
		memcpy(&lo, p + 8 * i, 4);
		memcpy(&hi, p + 8 * i + 4, 4);
		memcpy(&nw, p + 8 * RANS_WAYS + 4 * i, 4);
		d->x[i] = (uint64_t)lo | (uint64_t)hi << 32;
		if (d->x[i] < RANS_L || (d->x[i] >> 63))
			return -1;
		words += nw;
		if (words * 4 > len - RANS_HEADER_BYTES)
			return -1;
		d->ptr[i] = w;
		w += (size_t)nw * 4;
		d->end[i] = w;
	}
	return words * 4 == len - RANS_HEADER_BYTES ? 0 : -1;
}

#endif /* QS_RANS_H */
