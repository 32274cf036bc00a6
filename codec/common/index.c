/* index.c - small helpers around the in-memory index. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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

uint64_t qs_face_esize(const qs_stream *s, int face)
{
	return face == QS_FACE_Q ? 1 : s->esize;
}

uint64_t qs_face_bytes(const qs_stream *s, int face)
{
	return s->elems * qs_face_esize(s, face);
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

const char *qs_stream_name(const qs_index *ix, uint64_t stream)
{
	return stream < ix->n_streams && ix->streams[stream].name ? ix->streams[stream].name : "?";
}

void qs_hex(const uint8_t *in, size_t n, char *out)
{
	static const char H[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = H[in[i] >> 4];
		out[2 * i + 1] = H[in[i] & 15];
	}
	out[2 * n] = 0;
}

void qs_index_free(qs_index *ix)
{
	for (size_t i = 0; i < ix->n_streams; i++)
		free(ix->streams[i].name);
	for (int v = 0; v < 2; v++) {
		for (size_t i = 0; i < ix->n_files[v]; i++)
			free(ix->files[v][i].path);
		free(ix->files[v]);
	}
	for (size_t i = 0; i < ix->n_tensors; i++) {
		qs_tensor *t = &ix->tensors[i];
		free(t->name);
		free(t->file);
		free(t->dtype);
		free(t->reason);
	}
	free(ix->streams);
	free(ix->chunks);
	free(ix->extents);
	free(ix->tensors);
	free(ix->source_dtype);
	memset(ix, 0, sizeof(*ix));
}
