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
	for (size_t i = 0; i < ix->n_streams; i++) {
		free(ix->streams[i].name);
		free(ix->streams[i].mem);
	}
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

static int grow_array(void **arr, size_t n, size_t elem)
{
	void *p = realloc(*arr, (n + 1) * elem);
	if (!p)
		return -1;
	*arr = p;
	return 0;
}

ssize_t qs_index_add_mem_file(qs_index *ix, int v, const char *name, uint8_t *mem, uint64_t mem_len,
			      const size_t *parts, size_t n_parts, const uint64_t *skip, qs_error *err)
{
	uint64_t need = 1;
	for (size_t k = 0; k < n_parts; k++)
		need += ix->files[v][parts[k]].n_extents;
	qs_extent *ne = realloc(ix->extents, (ix->n_extents + need) * sizeof(qs_extent));
	if (ne)
		ix->extents = ne;
	char *path = strdup(name);
	if (!ne || !path || grow_array((void **)&ix->streams, ix->n_streams, sizeof(qs_stream))
	    || grow_array((void **)&ix->files[v], ix->n_files[v], sizeof(qs_vfile))) {
		free(path);
		free(mem);
		return qs_fail(err, ENOMEM, "out of memory");
	}
	uint64_t chunk = ix->max_chunk_bytes ? ix->max_chunk_bytes : mem_len;
	if (chunk > mem_len)
		chunk = mem_len;
	if (chunk > ix->max_chunk_bytes)
		ix->max_chunk_bytes = chunk;
	qs_stream *s = &ix->streams[ix->n_streams];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	s->kind = QS_STREAM_MEM;
	s->esize = 1;
	s->elems = mem_len;
	s->chunk_elems = chunk ? chunk : 1;
	s->n_chunks = mem_len ? (mem_len + s->chunk_elems - 1) / s->chunk_elems : 0;
	s->scale_stream = -1;
	s->mem = mem;
	qs_vfile *f = &ix->files[v][ix->n_files[v]];
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->derived = 1;
	f->first_extent = ix->n_extents;
	ix->extents[ix->n_extents++] = (qs_extent){ 0, mem_len, (uint32_t)ix->n_streams, QS_FACE_HIGH, 0 };
	f->n_extents = 1;
	f->size = mem_len;
	/* each part's extents after its first skip[k] bytes (its header) */
	for (size_t k = 0; k < n_parts; k++) {
		const qs_vfile *pf = &ix->files[v][parts[k]];
		for (uint64_t i = 0; i < pf->n_extents; i++) {
			qs_extent x = ix->extents[pf->first_extent + i];
			if (x.file_off + x.len <= skip[k])
				continue;
			uint64_t cut = x.file_off < skip[k] ? skip[k] - x.file_off : 0;
			ix->extents[ix->n_extents++] = (qs_extent){ f->size, x.len - cut, x.stream, x.face,
								    x.stream_off + cut };
			f->n_extents++;
			f->size += x.len - cut;
		}
	}
	ix->n_streams++;
	return (ssize_t)ix->n_files[v]++;
}
