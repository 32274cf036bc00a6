/* halfcast.h - float -> BF16 / F16 with round-to-nearest-even, for the test
 * tools (the library never converts: it stores what it is given). */
#ifndef QS_HALFCAST_H
#define QS_HALFCAST_H

#include <stdint.h>
#include <string.h>

static inline uint16_t f32_to_bf16(float f)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	if ((b & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((b >> 16) | 0x40);   /* NaN stays a (quiet) NaN */
	return (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

static inline uint16_t f32_to_f16(float f)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	uint32_t s = (b >> 16) & 0x8000, e = (b >> 23) & 0xff, m = b & 0x7fffff;
	if (e == 0xff)
		return (uint16_t)(s | 0x7c00 | (m ? 0x200 : 0));
	int E = (int)e - 112;
	if (E >= 31)
		return (uint16_t)(s | 0x7c00);
	if (E <= 0) {                       /* subnormal or zero */
		if (E < -10)
			return (uint16_t)s;
		m |= 0x800000;
		int sh = 14 - E;
		uint32_t h = m >> sh, rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(s | h);
	}
	uint32_t h = (uint32_t)E << 10 | m >> 13, rem = m & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;                            /* may carry into the exponent: correct */
	return (uint16_t)(s | h);
}

#endif
