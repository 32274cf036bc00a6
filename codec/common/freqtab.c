/* freqtab.c - normalising, serialising and reading frequency tables. */
#include "freqtab.h"

#include <string.h>

size_t qs_varint_put(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

size_t qs_varint_get(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t r = 0;
	for (size_t i = 0; i < len && i < 10; i++) {
		r |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

void ft_build(const uint32_t *counts, uint32_t nsym, ft_enc *t)
{
	uint64_t total = 0;
	uint32_t lo = nsym, hi = 0, best = 0;
	memset(t, 0, sizeof(*t));
	t->nsym = nsym;
	for (uint32_t s = 0; s < nsym; s++) {
		if (!counts[s])
			continue;
		total += counts[s];
		if (lo == nsym)
			lo = s;
		hi = s;
		if (counts[s] > counts[best])
			best = s;
	}
	if (!total)
		return;
	uint32_t sum = 0;
	for (uint32_t s = lo; s <= hi; s++) {
		if (!counts[s])
			continue;
		uint32_t f = (uint32_t)(((uint64_t)counts[s] * FT_M) / total);
		t->freq[s] = (uint16_t)(f ? f : 1);
		sum += t->freq[s];
	}
	/* Rounding leaves the sum a little off 4096: the most frequent symbol
	 * absorbs a deficit; an excess is taken from the largest frequencies. */
	if (sum < FT_M)
		t->freq[best] = (uint16_t)(t->freq[best] + (FT_M - sum));
	while (sum > FT_M) {
		uint32_t m = lo;
		for (uint32_t s = lo; s <= hi; s++)
			if (t->freq[s] > t->freq[m])
				m = s;
		uint32_t take = sum - FT_M;
		if (take > t->freq[m] - 1u)
			take = t->freq[m] - 1u;
		t->freq[m] = (uint16_t)(t->freq[m] - take);
		sum -= take;
	}
	uint32_t c = 0;
	for (uint32_t s = lo; s <= hi; s++) {
		t->start[s] = (uint16_t)c;
		c += t->freq[s];
	}
	t->first = lo;
	t->count = hi - lo + 1;
}

size_t ft_write(const ft_enc *t, uint8_t *out)
{
	size_t n = qs_varint_put(out, t->first);
	n += qs_varint_put(out + n, t->count);
	for (uint32_t i = 0; i < t->count; i++)
		n += qs_varint_put(out + n, t->freq[t->first + i]);
	return n;
}

size_t ft_read(const uint8_t *p, size_t len, uint32_t nsym, ft_dec_entry *tab, int *empty)
{
	uint64_t first, count, f;
	size_t n = qs_varint_get(p, len, &first), k;
	if (!n || !(k = qs_varint_get(p + n, len - n, &count)))
		return 0;
	n += k;
	*empty = count == 0;
	if (!count)
		return n;
	if (first >= nsym || count > nsym - first)
		return 0;
	uint32_t slot = 0;
	for (uint64_t i = 0; i < count; i++) {
		if (!(k = qs_varint_get(p + n, len - n, &f)) || f > FT_M - slot)
			return 0;
		n += k;
		for (uint32_t j = 0; j < f; j++) {
			tab[slot + j].sym = (uint16_t)(first + i);
			tab[slot + j].freq = (uint16_t)f;
			tab[slot + j].bias = (uint16_t)j;
			tab[slot + j].pad = 0;
		}
		slot += (uint32_t)f;
	}
	return slot == FT_M ? n : 0;
}
