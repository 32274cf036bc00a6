/* util.c - the byte-size syntax and hex digits every tool shares. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

QS_API int qs_parse_bytes(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	if (!s || !isdigit((unsigned char)s[0]))
		return -1;   /* strtoull would take "-1" and " 1" */
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		const char *u = strchr(units, toupper((unsigned char)*end));
		if (!u || end[1])
			return -1;
		unsigned shift = 10 * (unsigned)(u - units + 1);
		if (v > (UINT64_MAX >> shift))
			return -1;
		v <<= shift;
	}
	*out = (uint64_t)v;
	return 0;
}

QS_API void qs_hex(const uint8_t *in, size_t n, char *out)
{
	static const char H[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = H[in[i] >> 4];
		out[2 * i + 1] = H[in[i] & 15];
	}
	out[2 * n] = 0;
}
