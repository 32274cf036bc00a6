/*
 * map.c - from a byte range of a file to the chunks that hold it: extents by
 * binary search, then chunks by division (a stream's chunks have one size).
 * Each piece carries what a cache owner needs (key, sizes, span).
 */
#include <errno.h>
#include <stdio.h>

#include "container.h"

/* The container bytes a decode of FACE of chunk K of S needs: the codes of
 * a QUANT chunk are part A, unless part A is the one byte QDRV (no codes
 * stored: they come from the floats of part B; any other part A of a
 * non-empty chunk is longer); none for a scale face (lowface.c). */
void qs_span_of(const qs_container *c, const qs_stream *s, uint32_t face, uint64_t k, qs_piece *p)
{
	p->span_off = 0;
	p->span_len = 0;
	/* a lower face decodes the codes; a scale face reads them itself in the
	 * rare case it needs them (lowface.c), so a read of scales reads none */
	if (s->kind == QS_STREAM_MEM || qs_face_is_scale((int)face))
		return;
	const qs_chunk *ch = &c->ix->chunks[s->first_chunk + k];
	p->span_off = ch->off;
	int both = s->kind == QS_STREAM_QUANT && (face == QS_FACE_HIGH || ch->len_a == 1);
	p->span_len = ch->len_a + (both ? ch->len_b : 0);
}

size_t qs_map(const qs_container *c, qs_view v, size_t file, uint64_t off, uint64_t len, qs_piece *out, size_t max)
{
	const qs_index *ix = c->ix;
	if ((unsigned)v >= QS_N_VIEWS || file >= ix->n_files[v])
		return 0;
	const qs_vfile *f = &ix->files[v][file];
	if (off >= f->size)
		return 0;
	if (len > f->size - off)
		len = f->size - off;
	uint64_t end = off + len, last = f->first_extent + f->n_extents;
	size_t n = 0;
	for (uint64_t x = qs_extent_at(ix, f, off); off < end && n < max && x < last; x++) {
		const qs_extent *e = &ix->extents[x];
		const qs_stream *s = &ix->streams[e->stream];
		uint64_t cb = s->chunk_elems / qs_face_unit(s, (int)e->face) * qs_face_unit_bytes(s, (int)e->face);
		while (off < end && off < e->file_off + e->len && n < max) {
			uint64_t so = e->stream_off + (off - e->file_off), k = so / cb, in = so % cb;
			uint64_t take = cb - in;
			if (take > e->file_off + e->len - off)
				take = e->file_off + e->len - off;
			if (take > end - off)
				take = end - off;
			qs_piece *p = &out[n++];
			p->key = qs_chunk_key(ix, s, (int)e->face, k);
			p->decoded_size = qs_face_chunk_bytes(s, (int)e->face, k);
			qs_span_of(c, s, e->face, k, p);
			p->chunk_off = in;
			p->len = take;
			p->file_off = off;
			p->stream = e->stream;
			p->face = e->face;
			p->chunk = k;
			off += take;
		}
	}
	return n;
}

uint64_t qs_key_count(const qs_container *c)
{
	return c->ix->n_keys;
}

uint64_t qs_max_chunk_bytes(const qs_container *c)
{
	return c->ix->max_chunk_bytes;
}

int qs_container_fd(const qs_container *c)
{
	return c->fd;
}

int qs_piece_error(const qs_container *c, const qs_piece *p, const char *file, int code, const char *what,
		   qs_error *err)
{
	const qs_index *ix = c->ix;
	uint64_t global = p->stream < ix->n_streams ? ix->streams[p->stream].first_chunk + p->chunk : 0;
	return qs_fail(err, code, "%s: file '%s': tensor '%s': chunk %llu (#%llu): %s", c->path, file ? file : "-",
		       qs_stream_name(ix, p->stream), (unsigned long long)p->chunk, (unsigned long long)global, what);
}

int qs_read_span(const qs_container *c, const qs_piece *p, void *span, const char *file, qs_error *err)
{
	int e = p->span_len ? qs_pread_full(c->fd, span, p->span_len, p->span_off) : 0;
	if (!e)
		return 0;
	char what[160];
	snprintf(what, sizeof(what), "backing read error: %s", strerror(-e));
	return qs_piece_error(c, p, file, -e, what, err);
}
