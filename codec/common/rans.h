/*
 * rans.h - the entropy coder every float codec shares.
 *
 * Range asymmetric numeral systems (Duda) with 64-bit states and 32-bit
 * renormalisation words.  Up to 32 states are interleaved (element j of a
 * part uses state j mod ways): each state's decode is a serial chain of a
 * table load, a multiply and a refill, and independent chains run side by
 * side.  Scalar code stops gaining at about 8 (measured: 8, 16 and 32 states
 * decode within 2% of each other); 32 is four AVX-512 vectors of 64-bit
 * lanes, so SIMD kernels can use the same streams.
 * The state x always lies in [RANS_L, RANS_L<<32).
 *
 * A symbol is (start, freq) out of a total of 2^bits, bits <= 31.  The kinds:
 *   - table symbols: frequencies normalised to 2^12 (freqtab.c);
 *   - table symbols with w raw bits above the slot (a sign+exponent symbol
 *     and its power-of-two mantissa in one step: freq f out of 2^(12+w));
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
 * Stream layout (FORMAT.md "rANS streams"): u8 ways (1, 2, 4, 8, 16 or 32),
 * ways x u64 initial decoder states, then one stream of u32 words in the
 * order the decoder consumes them, whichever state takes them.  One stream
 * rather than one per state: the decoder checks a single pointer against the
 * end, and the header stays 8 bytes per state.  The encoder starts every state
 * at RANS_L; the decoder must end with all of them back at RANS_L and every
 * word consumed, which catches most damage before the checksum does.  The
 * decoding steps live in decompress/dec_core.h, the loops in float_dec.c
 * (portable) and float_dec_avx512.c (eight states per vector).
 */
#ifndef QS_RANS_H
#define QS_RANS_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define RANS_L (1ull << 31)
#define RANS_MAX_WAYS 32
#define RANS_UNIFORM_BITS 16
#define RANS_UNIFORM_MAX (1u << RANS_UNIFORM_BITS)
/* widest mantissa coded in the same step as its table symbol: 12 + 19 = 31 */
#define RANS_JOINT_MAX_BITS 19

/* The number of states an encoder uses for a part of n elements: 32 pays
 * for its 256-byte header from a few thousand elements on. */
static inline unsigned rans_ways_for(size_t n) { return n >= 4096 ? 32 : 4; }
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
	uint64_t x[RANS_MAX_WAYS];
	unsigned ways;
	/* one word stream, written backwards from top towards lim */
	uint32_t *ptr, *lim, *top;
	int overflow;
	const rans_recip *recip; /* recip[f] for f in [1, 2^16] */
} rans_enc;

static inline void rans_enc_init(rans_enc *e, uint32_t *buf, size_t words, unsigned ways, const rans_recip *recip)
{
	for (unsigned i = 0; i < RANS_MAX_WAYS; i++)
		e->x[i] = RANS_L;
	e->ways = ways;
	e->lim = buf;
	e->top = e->ptr = buf + words;
	e->overflow = 0;
	e->recip = recip;
}

/* freq <= 2^16, bits <= 31 */
static inline void rans_put(rans_enc *e, unsigned way, uint32_t start, uint32_t freq, unsigned bits)
{
	uint64_t x = e->x[way];
	uint64_t xmax = ((RANS_L >> bits) << 32) * freq;
	/* never taken while the buffer holds a word per put (the callers size
	 * it so): the renormalisation below may then store unconditionally */
	if (__builtin_expect(e->ptr == e->lim, 0)) {
		e->overflow = 1;
		return;
	}
	/* branch-free: the word is written either way and kept only when x
	 * needs to shrink, which happens for about one symbol in five at random
	 * (a branch there mispredicts that often) */
	unsigned need = x >= xmax;
	e->ptr[-1] = (uint32_t)x;
	e->ptr -= need;
	x >>= 32 * need;
	uint64_t q = rans_recip_div(x, e->recip[freq]);
	e->x[way] = (q << bits) + (x - q * freq) + start;
}

/* value in [0, 2^k), k <= 16: raw bits, no division */
static inline void rans_put_bits(rans_enc *e, unsigned way, uint32_t v, unsigned k)
{
	if (k)
		rans_put(e, way, v, 1, k);
}

/* value in [0, n), 2 <= n <= 2^16, step = rans_step_make(n) */
static inline void rans_put_uniform(rans_enc *e, unsigned way, uint32_t v, uint64_t step)
{
	uint64_t at = v * step;   /* start(v + 1) = (at + step) >> 32 */
	uint32_t start = (uint32_t)(at >> 32);
	rans_put(e, way, start, (uint32_t)((at + step) >> 32) - start, RANS_UNIFORM_BITS);
}

static inline unsigned rans_log2_exact(uint64_t n) /* k if n == 2^k, else 64 */
{
	return n && !(n & (n - 1)) ? (unsigned)__builtin_ctzll(n) : 64;
}

/* value in [0, n) for any 1 <= n <= 2^32.  Powers of two are raw bits; above
 * 2^16 the value is split into a uniform high part and 16 raw low bits (the
 * decoder rejects a result >= n). */
static inline void rans_put_count(rans_enc *e, unsigned way, uint32_t v, uint64_t n)
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

/* Write the stream (ways, states, words) into out, which has room for cap
 * bytes.  Returns its length, or 0 on overflow / no room. */
static inline size_t rans_enc_finish(rans_enc *e, uint8_t *out, size_t cap)
{
	size_t nw = (size_t)(e->top - e->ptr), len = 1 + 8 * (size_t)e->ways + 4 * nw;
	if (e->overflow || len > cap)
		return 0;
	out[0] = (uint8_t)e->ways;
	for (unsigned i = 0; i < e->ways; i++) {
		uint32_t lo = (uint32_t)e->x[i], hi = (uint32_t)(e->x[i] >> 32);
		memcpy(out + 1 + 8 * i, &lo, 4);
		memcpy(out + 5 + 8 * i, &hi, 4);
	}
	memcpy(out + 1 + 8 * (size_t)e->ways, e->ptr, nw * 4);
	return len;
}

/* ---- decoder ---------------------------------------------------------- */

typedef struct rans_dec {
	uint64_t x[RANS_MAX_WAYS];
	unsigned ways;
	const uint8_t *ptr, *end;
} rans_dec;

/* Parse the stream header: ways a power of two <= 32, every state in range,
 * whole words after it. */
static inline int rans_dec_init(rans_dec *d, const uint8_t *p, size_t len)
{
	if (len < 1)
		return -1;
	unsigned ways = p[0];
	if (!ways || ways > RANS_MAX_WAYS || (ways & (ways - 1)) || len < 1 + 8 * (size_t)ways)
		return -1;
	d->ways = ways;
	for (unsigned i = 0; i < ways; i++) {
		uint32_t lo, hi;
		memcpy(&lo, p + 1 + 8 * i, 4);
		memcpy(&hi, p + 5 + 8 * i, 4);
		d->x[i] = (uint64_t)lo | (uint64_t)hi << 32;
		if (d->x[i] < RANS_L || (d->x[i] >> 63))
			return -1;
	}
	d->ptr = p + 1 + 8 * (size_t)ways;
	d->end = p + len;
	return (d->end - d->ptr) % 4 ? -1 : 0;
}

#endif /* QS_RANS_H */
