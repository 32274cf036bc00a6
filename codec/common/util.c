/* util.c - the small helpers every part of the codec (and the tools) share:
 * error messages, array growth, a string buffer, suffixes, acceptable paths,
 * the byte-size syntax and hex digits. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "internal.h"

int qs_fail(qs_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return -1;
}

void qs_strbuf_add(qs_strbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 1 << 12) + n;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

int qs_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 8, bytes;
	while (n < need)
		n = n > SIZE_MAX / 2 ? need : 2 * n;
	if (__builtin_mul_overflow(n, elem, &bytes))
		return -1;
	void *p = realloc(*arr, bytes);
	if (!p)
		return -1;
	memset((char *)p + *cap * elem, 0, bytes - *cap * elem);
	*arr = p;
	*cap = n;
	return 0;
}

QS_API unsigned long qs_raise_fd_limit(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r))
		return 0;
	if (r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r))
			getrlimit(RLIMIT_NOFILE, &r);
	}
	return (unsigned long)r.rlim_cur;
}

QS_API int qs_within(const char *a, const char *b)
{
	size_t l = strlen(b);
	if (l == 1 && b[0] == '/')
		return a[0] == '/';
	return !strncmp(a, b, l) && (a[l] == 0 || a[l] == '/');
}

int qs_ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

int qs_path_ok(const char *p)
{
	size_t len = strlen(p);
	if (!len || len > 4095 || p[0] == '/')
		return 0;
	const char *c = p;
	while (*c) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);
		if (n == 0 || n > 255 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)c[i] < 0x20 || c[i] == 0x7f)
				return 0;
		c += n;
		if (*c == '/')
			c++;
	}
	return p[len - 1] != '/';
}

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

QS_API void qs_escape(const char *src, char *dst, size_t cap)
{
	static const char H[] = "0123456789abcdef";
	size_t o = 0;
	for (const unsigned char *s = (const unsigned char *)src; *s && o + 4 < cap; s++) {
		if (*s < 0x20 || *s == 0x7f || *s == '\\') {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = H[*s >> 4];
			dst[o++] = H[*s & 15];
		} else {
			dst[o++] = (char)*s;
		}
	}
	if (cap)
		dst[o] = 0;
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

double qs_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void qs_tick(qs_ticker *t, uint64_t add)
{
	t->done += add;
	if (!t->p || !t->p->fn)
		return;
	double now = qs_now();
	if (now - t->last >= 0.1) {
		t->last = now;
		t->p->fn(t->p->ctx, t->done < t->total ? t->done : t->total, t->total);
	}
}

void qs_tick_end(qs_ticker *t)
{
	if (t->p && t->p->fn)
		t->p->fn(t->p->ctx, t->total, t->total);
}

int qs_parse_low_views(const char *list, unsigned *out)
{
	if (!list)
		return -1;
	if (!strcmp(list, "none") || !strcmp(list, "all")) {
		*out = list[0] == 'a' ? QS_OPEN_LOW_VIEWS : 0;
		return 0;
	}
	unsigned got = 0;
	for (const char *p = list;; p += 5) {
		/* exactly "intN" then ',' or ':' or the end */
		if (strncmp(p, "int", 3) || p[3] < '2' || p[3] > '7' || (p[4] && p[4] != ',' && p[4] != ':')
		    || got & QS_OPEN_INT(p[3] - '0'))
			return -1;
		got |= QS_OPEN_INT(p[3] - '0');
		if (!p[4])
			break;
	}
	*out = got;
	return 0;
}
