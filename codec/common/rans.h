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
 *     start(i) = ceil(i * 2^16 / n); this is how the position of a float inside
 *     its INT8 bucket is coded, at log2(n) bits to within 1e-4 bit;
 *   - raw 16-bit pieces (n = 2^16, freq 1): just shifts.
 *
 * Why not a fixed power-of-two alphabet everywhere: the number of float values
 * that round to one INT8 code depends on the row's scale, and coding that
 * position with the exact n of the row is what keeps the residual at the
 * information limit (BRIEF.md: keyed on q alone it costs +23%).
 *
 * Stream layout (FORMAT.md "rANS streams"): 4 x u64 initial decoder states,
 * then u32 words in the order the decoder consumes them.  The encoder starts
 * every state at RANS_L; the decoder must end with all four back at RANS_L and
 * every word consumed, which catches most damage before the checksum does.
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

/* Decoder: floor(a / n) for 32-bit a and 2 <= n < 2^32 with c = ceil(2^64/n)
 * (Lemire, Kaser & Kurz 2019). */
static inline uint64_t rans_magic_make(uint32_t n) { return n < 2 ? 0 : UINT64_MAX / n + 1; }
static inline uint32_t rans_magic_div(uint32_t a, uint64_t c)
{
	return (uint32_t)(((unsigned __int128)c * a) >> 64);
}

/* ---- encoder ---------------------------------------------------------- */

typedef struct rans_enc {
	uint64_t x[RANS_WAYS];
	uint32_t *ptr;          /* words are written backwards, ptr moves down */
	uint32_t *lim;          /* lowest writable word */
	int overflow;
	const rans_recip *recip; /* recip[f] for f in [1, 2^16] */
} rans_enc;

static inline void rans_enc_init(rans_enc *e, uint32_t *buf, size_t words, const rans_recip *recip)
{
	for (int i = 0; i < RANS_WAYS; i++)
		e->x[i] = RANS_L;
	e->lim = buf;
	e->ptr = buf + words;
	e->overflow = 0;
	e->recip = recip;
}

static inline void rans_put(rans_enc *e, int way, uint32_t start, uint32_t freq, unsigned bits)
{
	uint64_t x = e->x[way];
	uint64_t xmax = ((RANS_L >> bits) << 32) * freq;
	if (x >= xmax) {
		if (e->ptr == e->lim) {
			e->overflow = 1;
			return;
		}
		*--e->ptr = (uint32_t)x;
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

/* value in [0, n), 2 <= n <= 2^16, magic = rans_magic_make(n) */
static inline void rans_put_uniform(rans_enc *e, int way, uint32_t v, uint32_t n, uint64_t magic)
{
	uint32_t start = rans_magic_div((v << RANS_UNIFORM_BITS) + n - 1, magic);
	uint32_t next = v + 1 == n ? RANS_UNIFORM_MAX
		: rans_magic_div(((v + 1) << RANS_UNIFORM_BITS) + n - 1, magic);
	rans_put(e, way, start, next - start, RANS_UNIFORM_BITS);
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
		rans_put_uniform(e, way, v, (uint32_t)n, rans_magic_make((uint32_t)n));
	} else {
		rans_put_bits(e, way, v & 0xffff, 16);   /* reverse order: low first */
		rans_put_count(e, way, v >> 16, ((n - 1) >> 16) + 1);
	}
}

/* Finish: write the states in front of the words.  Returns the stream start
 * (inside the caller's buffer) and its length in bytes, or NULL on overflow. */
static inline uint8_t *rans_enc_finish(rans_enc *e, size_t *len, uint32_t *end)
{
	if (e->overflow || (size_t)(e->ptr - e->lim) < 2 * RANS_WAYS)
		return NULL;
	for (int i = RANS_WAYS - 1; i >= 0; i--) {
		*--e->ptr = (uint32_t)(e->x[i] >> 32);
		*--e->ptr = (uint32_t)e->x[i];
	}
	*len = (size_t)(end - e->ptr) * 4;
	return (uint8_t *)e->ptr;
}

/* ---- decoder ---------------------------------------------------------- */

typedef struct rans_dec {
	uint64_t x[RANS_WAYS];
	const uint8_t *ptr, *end;
	int underflow;          /* ran out of words: the stream is damaged */
} rans_dec;

static inline int rans_dec_init(rans_dec *d, const uint8_t *p, size_t len)
{
	if (len < 8 * RANS_WAYS || len % 4)
		return -1;
	for (int i = 0; i < RANS_WAYS; i++) {
		uint64_t lo, hi;
		uint32_t w;
		memcpy(&w, p + 8 * i, 4); lo = w;
		memcpy(&w, p + 8 * i + 4, 4); hi = w;
		d->x[i] = lo | hi << 32;
		if (d->x[i] < RANS_L || (d->x[i] >> 63))
			return -1;
	}
	d->ptr = p + 8 * RANS_WAYS;
	d->end = p + len;
	d->underflow = 0;
	return 0;
}

static inline void rans_renorm(rans_dec *d, int way)
{
	if (d->x[way] < RANS_L) {
		uint32_t w = 0;
		if (d->ptr < d->end) {
			memcpy(&w, d->ptr, 4);
			d->ptr += 4;
		} else {
			d->underflow = 1;
		}
		d->x[way] = d->x[way] << 32 | w;
	}
}

static inline void rans_advance(rans_dec *d, int way, uint32_t slot, uint32_t start, uint32_t freq, unsigned bits)
{
	d->x[way] = freq * (d->x[way] >> bits) + slot - start;
	rans_renorm(d, way);
}

static inline uint32_t rans_get_bits(rans_dec *d, int way, unsigned k)
{
	if (!k)
		return 0;
	uint32_t v = (uint32_t)(d->x[way] & ((1u << k) - 1));
	d->x[way] >>= k;
	rans_renorm(d, way);
	return v;
}

/* 2 <= n <= 2^16, magic = rans_magic_make(n) */
static inline uint32_t rans_get_uniform(rans_dec *d, int way, uint32_t n, uint64_t magic)
{
	uint32_t slot = (uint32_t)(d->x[way] & 0xffff);
	uint32_t v = (slot * n) >> RANS_UNIFORM_BITS;
	uint32_t start = rans_magic_div((v << RANS_UNIFORM_BITS) + n - 1, magic);
	uint32_t next = v + 1 == n ? RANS_UNIFORM_MAX
		: rans_magic_div(((v + 1) << RANS_UNIFORM_BITS) + n - 1, magic);
	rans_advance(d, way, slot, start, next - start, RANS_UNIFORM_BITS);
	return v;
}

/* mirror of rans_put_count; *bad is set if the value decoded is >= n */
static inline uint32_t rans_get_count(rans_dec *d, int way, uint64_t n, int *bad)
{
	unsigned k = rans_log2_exact(n);
	if (k <= 16)
		return rans_get_bits(d, way, k);
	if (n <= RANS_UNIFORM_MAX)
		return rans_get_uniform(d, way, (uint32_t)n, rans_magic_make((uint32_t)n));
	uint32_t hi = rans_get_count(d, way, ((n - 1) >> 16) + 1, bad);
	uint32_t v = hi << 16 | rans_get_bits(d, way, 16);
	if (v >= n)
		*bad = 1;
	return v;
}

/* All words consumed and all states back where the encoder started. */
static inline int rans_dec_done(const rans_dec *d)
{
	if (d->underflow || d->ptr != d->end)
		return -1;
	for (int i = 0; i < RANS_WAYS; i++)
		if (d->x[i] != RANS_L)
			return -1;
	return 0;
}

#endif /* QS_RANS_H */
