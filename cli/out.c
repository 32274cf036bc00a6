/* out.c - escaped output lines and sizes with units (out.h). */
#include <stdarg.h>
#include <stdlib.h>

#include "out.h"
#include "qstore.h"

void say(FILE *f, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t cap = 4 * (size_t)n + 1;
	char *safe = malloc(cap);
	if (safe) {
		qs_escape(line, safe, cap);
		fprintf(f, "%s\n", safe);
	}
	free(safe);
	free(line);
}

const char *human_bytes(uint64_t bytes, char out[16])
{
	static const char *const UNIT[] = { "kB", "MB", "GB", "TB", "PB" };
	if (bytes < 1000) {
		snprintf(out, 16, "%llu B", (unsigned long long)bytes);
		return out;
	}
	double v = (double)bytes / 1000;
	int u = 0;
	while (v >= 1000 && u < 4) {
		v /= 1000;
		u++;
	}
	snprintf(out, 16, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, UNIT[u]);
	return out;
}
