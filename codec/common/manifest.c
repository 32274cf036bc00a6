/*
 * manifest.c - the JSON manifest: streams, tensors and the files of both
 * views (FORMAT.md "manifest").  Loading checks every count, id and range
 * before anything else may use it, so the rest of the reader can index the
 * tables without further checks.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "codecs.h"
#include "internal.h"

#define VIEW_KEY qs_view_names

/* ---- one record each ------------------------------------------------------
 * The manifest is JSON Lines: a header object, then one object per stream,
 * tensor, high file and int8 file, in that order.  One small document per
 * line keeps memory flat when a model has 100,000 tensors (a single JSON
 * tree of that manifest would take hundreds of MB in any DOM library). */

json_t *qs_json_stream(const qs_stream *s)
{
	json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I}", "name", s->name, "kind", s->kind,
			      "fmt", s->fmt, "esize", (int)s->esize, "elems", (json_int_t)s->elems,
			      "chunk_elems", (json_int_t)s->chunk_elems, "first_chunk", (json_int_t)s->first_chunk,
			      "chunks", (json_int_t)s->n_chunks);
	if (o && s->kind == QS_STREAM_QUANT) {
		json_object_set_new(o, "cols", json_integer((json_int_t)s->cols));
		json_object_set_new(o, "scale_stream", json_integer(s->scale_stream));
	}
	return o;
}

json_t *qs_json_tensor(const qs_tensor *t)
{
	json_t *shape = json_array();
	for (int d = 0; d < t->ndim; d++)
		json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:b, s:s, s:f, s:I}", "name", t->name, "file", t->file,
			 "dtype", t->dtype, "shape", shape, "nbytes", (json_int_t)t->nbytes, "stream", (json_int_t)t->stream,
			 "quantized", t->quantized, "reason", t->reason, "floor_bytes", t->floor_bytes,
			 "stored_bytes", (json_int_t)t->stored_bytes);
}

json_t *qs_json_file(const qs_vfile *f, int view)
{
	char hex[65];
	qs_hex(f->sha256, 32, hex);
	return json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "view", VIEW_KEY[view], "path", f->path,
			 "size", (json_int_t)f->size, "sha256", hex, "first_extent", (json_int_t)f->first_extent,
			 "extents", (json_int_t)f->n_extents);
}

static void put_line(qs_strbuf *b, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	if (!s)
		b->oom = 1;
	else
		qs_strbuf_add(b, s, strlen(s));
	qs_strbuf_add(b, "\n", 1);
	free(s);
}

char *qs_manifest_dump(const qs_index *ix, size_t *len)
{
	qs_strbuf b = { 0 };
	put_line(&b, json_pack("{s:s, s:i, s:s, s:f, s:I, s:I, s:I, s:I}", "format", "qstore-manifest", "version", 1,
			       "source_dtype", ix->source_dtype ? ix->source_dtype : "", "floor_bytes", ix->floor_bytes,
			       "streams", (json_int_t)ix->n_streams, "tensors", (json_int_t)ix->n_tensors,
			       "high_files", (json_int_t)ix->n_files[0], "int8_files", (json_int_t)ix->n_files[1]));
	for (size_t i = 0; i < ix->n_streams; i++)
		put_line(&b, qs_json_stream(&ix->streams[i]));
	for (size_t i = 0; i < ix->n_tensors; i++)
		put_line(&b, qs_json_tensor(&ix->tensors[i]));
	for (int v = 0; v < 2; v++)
		for (size_t i = 0; i < ix->n_files[v]; i++)
			put_line(&b, qs_json_file(&ix->files[v][i], v));
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

/* ---- loading ----------------------------------------------------------- */

typedef struct jctx { const char *where; qs_error *err; int bad; } jctx;

static void bad_field(jctx *c, const char *what, const char *key)
{
	if (!c->bad)
		qs_fail(c->err, EIO, "%s: damaged manifest: %s has no valid '%s'", c->where, what, key);
	c->bad = 1;
}

static uint64_t get_u64(jctx *c, json_t *o, const char *key, const char *what)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		bad_field(c, what, key);
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

static char *get_str(jctx *c, json_t *o, const char *key, const char *what)
{
	json_t *v = json_object_get(o, key);
	char *s = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
	if (!s)
		bad_field(c, what, key);
	return s;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < 2 * n; i++) {
		int c = s[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		out[i / 2] = (uint8_t)(i & 1 ? out[i / 2] | v : v << 4);
	}
	return 0;
}

static void load_stream(jctx *c, json_t *o, qs_stream *s)
{
	s->scale_stream = -1;
	s->name = get_str(c, o, "name", "stream");
	s->kind = (int)get_u64(c, o, "kind", "stream");
	s->fmt = (int)get_u64(c, o, "fmt", "stream");
	s->esize = (uint32_t)get_u64(c, o, "esize", "stream");
	s->elems = get_u64(c, o, "elems", "stream");
	s->chunk_elems = get_u64(c, o, "chunk_elems", "stream");
	s->first_chunk = get_u64(c, o, "first_chunk", "stream");
	s->n_chunks = get_u64(c, o, "chunks", "stream");
	if (s->kind == QS_STREAM_QUANT) {
		s->cols = get_u64(c, o, "cols", "stream");
		s->scale_stream = (int64_t)get_u64(c, o, "scale_stream", "stream");
	}
}

static void load_tensor(jctx *c, json_t *o, qs_tensor *t, size_t n_streams)
{
	json_t *shape = json_object_get(o, "shape"), *st = json_object_get(o, "stream"),
	       *fb = json_object_get(o, "floor_bytes");
	t->name = get_str(c, o, "name", "tensor");
	t->file = get_str(c, o, "file", "tensor");
	t->dtype = get_str(c, o, "dtype", "tensor");
	t->reason = get_str(c, o, "reason", "tensor");
	t->nbytes = get_u64(c, o, "nbytes", "tensor");
	t->stored_bytes = get_u64(c, o, "stored_bytes", "tensor");
	t->quantized = json_is_true(json_object_get(o, "quantized"));
	t->floor_bytes = json_is_number(fb) ? json_number_value(fb) : 0;
	t->stream = json_is_integer(st) ? json_integer_value(st) : -2;
	if (!json_is_array(shape) || json_array_size(shape) > QS_MAX_DIMS || t->stream < -1
	    || t->stream >= (int64_t)n_streams) {
		bad_field(c, "tensor", "shape or stream");
		return;
	}
	t->ndim = (int)json_array_size(shape);
	for (int d = 0; d < t->ndim; d++) {
		json_t *x = json_array_get(shape, (size_t)d);
		t->shape[d] = json_is_integer(x) && json_integer_value(x) >= 0 ? (uint64_t)json_integer_value(x) : 0;
	}
}

static void load_file(jctx *c, json_t *o, qs_vfile *f, int view)
{
	json_t *h = json_object_get(o, "sha256"), *v = json_object_get(o, "view");
	f->path = get_str(c, o, "path", "file");
	f->size = get_u64(c, o, "size", "file");
	f->first_extent = get_u64(c, o, "first_extent", "file");
	f->n_extents = get_u64(c, o, "extents", "file");
	if (!json_is_string(v) || strcmp(json_string_value(v), VIEW_KEY[view]))
		bad_field(c, "file", "view");
	if (!json_is_string(h) || unhex(json_string_value(h), f->sha256, 32))
		bad_field(c, "file", "sha256");
}

/* calloc that tolerates n = 0 and refuses counts no manifest of this size
 * could hold (each record takes more than 16 bytes of text) */
static void *alloc_records(size_t n, size_t elem, size_t text_len)
{
	if (n > text_len / 16)
		return NULL;
	return calloc(n ? n : 1, elem);
}

int qs_manifest_load(qs_index *ix, const char *text, size_t len, uint64_t n_chunks, uint64_t n_extents,
		     const char *where, qs_error *err)
{
	jctx c = { where, err, 0 };
	const char *p = text, *end = text + len;
	uint64_t counts[5] = { 0 }, done[5] = { 0 };   /* header, streams, tensors, high, int8 */
	size_t line = 0;
	ix->n_chunks = n_chunks;
	ix->n_extents = n_extents;
	while (p < end && !c.bad) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_error_t je;
		json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
		p += n + (nl != NULL);
		line++;
		if (!json_is_object(o)) {
			json_decref(o);
			return qs_fail(err, EIO, "%s: damaged manifest: line %zu is not a JSON object", where, line);
		}
		if (line == 1) {
			json_t *fmt = json_object_get(o, "format"), *ver = json_object_get(o, "version"),
			       *fl = json_object_get(o, "floor_bytes");
			if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "qstore-manifest")
			    || !json_is_integer(ver) || json_integer_value(ver) != 1) {
				json_decref(o);
				return qs_fail(err, EIO, "%s: manifest format or version not supported", where);
			}
			ix->source_dtype = get_str(&c, o, "source_dtype", "manifest");
			ix->floor_bytes = json_is_number(fl) ? json_number_value(fl) : 0;
			counts[1] = get_u64(&c, o, "streams", "manifest");
			counts[2] = get_u64(&c, o, "tensors", "manifest");
			counts[3] = get_u64(&c, o, "high_files", "manifest");
			counts[4] = get_u64(&c, o, "int8_files", "manifest");
			ix->n_streams = counts[1];
			ix->n_tensors = counts[2];
			ix->n_files[0] = counts[3];
			ix->n_files[1] = counts[4];
			ix->streams = alloc_records(counts[1], sizeof(qs_stream), len);
			ix->tensors = alloc_records(counts[2], sizeof(qs_tensor), len);
			ix->files[0] = alloc_records(counts[3], sizeof(qs_vfile), len);
			ix->files[1] = alloc_records(counts[4], sizeof(qs_vfile), len);
			if (!c.bad && (!ix->streams || !ix->tensors || !ix->files[0] || !ix->files[1])) {
				json_decref(o);
				ix->n_streams = ix->n_tensors = ix->n_files[0] = ix->n_files[1] = 0;
				return qs_fail(err, EIO, "%s: damaged manifest: record counts out of range", where);
			}
		} else if (done[1] < counts[1]) {
			load_stream(&c, o, &ix->streams[done[1]++]);
		} else if (done[2] < counts[2]) {
			load_tensor(&c, o, &ix->tensors[done[2]++], ix->n_streams);
		} else if (done[3] < counts[3]) {
			load_file(&c, o, &ix->files[0][done[3]++], 0);
		} else if (done[4] < counts[4]) {
			load_file(&c, o, &ix->files[1][done[4]++], 1);
		} else {
			bad_field(&c, "manifest", "record count");
		}
		json_decref(o);
	}
	if (!c.bad && (line == 0 || memcmp(done + 1, counts + 1, 4 * sizeof(uint64_t))))
		return qs_fail(err, EIO, "%s: damaged manifest: records missing", where);
	return c.bad ? -1 : 0;
}

/* ---- validation -------------------------------------------------------- */

static int cmp_path(const void *a, const void *b)
{
	const unsigned char *x = *(const unsigned char *const *)a, *y = *(const unsigned char *const *)b;
	for (; *x && *x == *y; x++, y++)
		;
	int cx = *x == '/' ? 1 : *x, cy = *y == '/' ? 1 : *y;   /* paths hold no byte below 0x20 */
	return cx - cy;
}

static int validate_streams(qs_index *ix, uint64_t data_begin, uint64_t data_end, const char *where,
			    qs_error *err)
{
	for (size_t i = 0; i < ix->n_streams; i++) {
		const qs_stream *s = &ix->streams[i];
		const qs_fmtinfo *f = qs_fmt_info(s->fmt);
		uint64_t bytes, need, last;
		int ok = s->kind >= QS_STREAM_BLOB && s->kind <= QS_STREAM_QUANT;
		if (ok && s->kind == QS_STREAM_BLOB)
			ok = s->fmt == QS_FMT_NONE && s->esize == 1;
		else if (ok)
			ok = f && s->esize == f->esize;
		ok = ok && !mul_ovf(s->elems, s->esize ? s->esize : 1, &bytes);
		if (ok && s->elems) {
			ok = s->chunk_elems >= 1 && s->chunk_elems <= QS_MAX_CHUNK_BYTES / s->esize;
			need = ok ? s->elems / s->chunk_elems + (s->elems % s->chunk_elems != 0) : 0;
			ok = ok && s->n_chunks == need;
		} else if (ok) {
			ok = s->n_chunks == 0;
		}
		ok = ok && !add_ovf(s->first_chunk, s->n_chunks, &last) && last <= ix->n_chunks;
		if (ok && s->kind == QS_STREAM_QUANT) {
			const qs_stream *sc = s->scale_stream >= 0 && (uint64_t)s->scale_stream < ix->n_streams
				? &ix->streams[s->scale_stream] : NULL;
			ok = s->cols >= 1 && s->elems % s->cols == 0 && sc && sc->kind == QS_STREAM_FLOAT
				&& sc->fmt == s->fmt && sc->elems == s->elems / s->cols;
		}
		/* a part is never larger than RAW: tag + decoded bytes (+ table slack) */
		uint64_t cbytes = s->chunk_elems * s->esize, limit = 1 + cbytes + QS_PART_SLACK;
		for (uint64_t k = 0; ok && k < s->n_chunks; k++) {
			const qs_chunk *c = &ix->chunks[s->first_chunk + k];
			uint64_t end;
			ok = c->off >= data_begin && c->len_a >= 1 && c->len_a <= limit && c->len_b <= limit
				&& (s->kind == QS_STREAM_QUANT ? c->len_b >= 1 : c->len_b == 0)
				&& !add_ovf(c->off, (uint64_t)c->len_a + c->len_b, &end) && end <= data_end;
			if (ok && c->len_a + (uint64_t)c->len_b > ix->max_parts_bytes)
				ix->max_parts_bytes = c->len_a + (uint64_t)c->len_b;
		}
		if (ok && s->n_chunks && cbytes > ix->max_chunk_bytes)
			ix->max_chunk_bytes = cbytes;
		if (!ok)
			return qs_fail(err, EIO, "%s: damaged index: stream %zu ('%s') has inconsistent sizes or chunks",
				       where, i, s->name);
	}
	return 0;
}

static int validate_files(const qs_index *ix, int v, const char *where, qs_error *err)
{
	char **paths = malloc((ix->n_files[v] ? ix->n_files[v] : 1) * sizeof(char *));
	if (!paths)
		return qs_fail(err, ENOMEM, "%s: out of memory", where);
	for (size_t i = 0; i < ix->n_files[v]; i++) {
		const qs_vfile *f = &ix->files[v][i];
		uint64_t last, at = 0;
		paths[i] = f->path;
		if (!qs_path_ok(f->path) || add_ovf(f->first_extent, f->n_extents, &last) || last > ix->n_extents) {
			free(paths);
			return qs_fail(err, EIO, "%s: damaged index: %s file %zu has a bad path or extent range",
				       where, VIEW_KEY[v], i);
		}
		for (uint64_t k = 0; k < f->n_extents; k++) {
			const qs_extent *e = &ix->extents[f->first_extent + k];
			const qs_stream *s = e->stream < ix->n_streams ? &ix->streams[e->stream] : NULL;
			uint64_t end;
			int ok = s && e->file_off == at && e->len > 0
				&& (e->face == QS_FACE_HIGH || (e->face == QS_FACE_Q && s->kind == QS_STREAM_QUANT))
				&& !add_ovf(e->stream_off, e->len, &end) && end <= qs_face_bytes(s, (int)e->face)
				&& !add_ovf(at, e->len, &at);
			if (!ok) {
				free(paths);
				return qs_fail(err, EIO, "%s: damaged index: extent %llu of %s file '%s' is out of range",
					       where, (unsigned long long)k, VIEW_KEY[v], f->path);
			}
		}
		if (at != f->size) {
			free(paths);
			return qs_fail(err, EIO, "%s: damaged index: extents of %s file '%s' cover %llu of %llu bytes",
				       where, VIEW_KEY[v], f->path, (unsigned long long)at, (unsigned long long)f->size);
		}
	}
	/* in path order ('/' before every other byte) a file that is also a
	 * directory is followed directly by a path under it */
	qsort(paths, ix->n_files[v], sizeof(char *), cmp_path);
	for (size_t i = 0; i + 1 < ix->n_files[v]; i++) {
		size_t l = strlen(paths[i]);
		if (!strcmp(paths[i], paths[i + 1])
		    || (!strncmp(paths[i], paths[i + 1], l) && paths[i + 1][l] == '/')) {
			int rc = qs_fail(err, EIO, "%s: damaged index: %s path '%s' appears twice or as a directory",
					 where, VIEW_KEY[v], paths[i]);
			free(paths);
			return rc;
		}
	}
	free(paths);
	return 0;
}

static int cmp_chunk_off(const void *a, const void *b)
{
	const qs_chunk *x = *(const qs_chunk *const *)a, *y = *(const qs_chunk *const *)b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Every chunk record belongs to exactly one stream, and no two records'
 * bytes overlap.  Without this, one stream's chunk could be another's (a
 * read returns the wrong tensor), and a small file could claim large
 * streams by pointing many records at the same bytes: with it, the decoded
 * size the index can claim is bounded by the records the file really holds. */
static int validate_disjoint(const qs_index *ix, const char *where, qs_error *err)
{
	uint8_t *owner = calloc(ix->n_chunks + 1, 1);
	const qs_chunk **by_off = malloc((ix->n_chunks + 1) * sizeof(*by_off));
	int rc = owner && by_off ? 0 : qs_fail(err, ENOMEM, "%s: out of memory", where);
	uint64_t used = 0;
	for (size_t i = 0; i < ix->n_streams && !rc; i++) {
		const qs_stream *s = &ix->streams[i];
		for (uint64_t k = 0; k < s->n_chunks && !rc; k++)
			if (owner[s->first_chunk + k]++)
				rc = qs_fail(err, EIO, "%s: damaged index: stream %zu ('%s') shares chunk record %llu "
					     "with another stream", where, i, s->name,
					     (unsigned long long)(s->first_chunk + k));
		used += s->n_chunks;
	}
	if (!rc && used != ix->n_chunks)
		rc = qs_fail(err, EIO, "%s: damaged index: %llu of %zu chunk records belong to no stream", where,
			     (unsigned long long)(ix->n_chunks - used), ix->n_chunks);
	for (size_t i = 0; i < ix->n_chunks && !rc; i++)
		by_off[i] = &ix->chunks[i];
	if (!rc)
		qsort(by_off, ix->n_chunks, sizeof(*by_off), cmp_chunk_off);
	for (size_t i = 1; i < ix->n_chunks && !rc; i++)
		if (by_off[i - 1]->off + by_off[i - 1]->len_a + by_off[i - 1]->len_b > by_off[i]->off)
			rc = qs_fail(err, EIO, "%s: damaged index: chunk records %td and %td overlap", where,
				     by_off[i - 1] - ix->chunks, by_off[i] - ix->chunks);
	free(owner);
	free(by_off);
	return rc;
}

int qs_index_validate(qs_index *ix, uint64_t data_begin, uint64_t data_end, const char *where, qs_error *err)
{
	if (validate_streams(ix, data_begin, data_end, where, err) || validate_disjoint(ix, where, err))
		return -1;
	for (int v = 0; v < 2; v++)
		if (validate_files(ix, v, where, err))
			return -1;
	return 0;
}
