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

static const char *VIEW_KEY[2] = { "high", "int8" };

char *qs_manifest_dump(const qs_index *ix, size_t *len)
{
	json_t *root = json_object(), *streams = json_array(), *tensors = json_array(), *views = json_object();
	json_object_set_new(root, "format", json_string("qstore-manifest"));
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "source_dtype", json_string(ix->source_dtype ? ix->source_dtype : ""));
	json_object_set_new(root, "floor_bytes", json_real(ix->floor_bytes));
	for (size_t i = 0; i < ix->n_streams; i++) {
		const qs_stream *s = &ix->streams[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(s->name));
		json_object_set_new(o, "kind", json_integer(s->kind));
		json_object_set_new(o, "fmt", json_integer(s->fmt));
		json_object_set_new(o, "esize", json_integer(s->esize));
		json_object_set_new(o, "elems", json_integer((json_int_t)s->elems));
		json_object_set_new(o, "chunk_elems", json_integer((json_int_t)s->chunk_elems));
		json_object_set_new(o, "first_chunk", json_integer((json_int_t)s->first_chunk));
		json_object_set_new(o, "chunks", json_integer((json_int_t)s->n_chunks));
		if (s->kind == QS_STREAM_QUANT) {
			json_object_set_new(o, "cols", json_integer((json_int_t)s->cols));
			json_object_set_new(o, "scale_stream", json_integer(s->scale_stream));
		}
		json_array_append_new(streams, o);
	}
	for (size_t i = 0; i < ix->n_tensors; i++) {
		const qs_tensor *t = &ix->tensors[i];
		json_t *o = json_object(), *shape = json_array();
		for (int d = 0; d < t->ndim; d++)
			json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
		json_object_set_new(o, "name", json_string(t->name));
		json_object_set_new(o, "file", json_string(t->file));
		json_object_set_new(o, "dtype", json_string(t->dtype));
		json_object_set_new(o, "shape", shape);
		json_object_set_new(o, "nbytes", json_integer((json_int_t)t->nbytes));
		json_object_set_new(o, "stream", json_integer(t->stream));
		json_object_set_new(o, "quantized", json_boolean(t->quantized));
		json_object_set_new(o, "reason", json_string(t->reason));
		json_object_set_new(o, "floor_bytes", json_real(t->floor_bytes));
		json_object_set_new(o, "stored_bytes", json_integer((json_int_t)t->stored_bytes));
		json_array_append_new(tensors, o);
	}
	for (int v = 0; v < 2; v++) {
		json_t *arr = json_array();
		for (size_t i = 0; i < ix->n_files[v]; i++) {
			const qs_vfile *f = &ix->files[v][i];
			char hex[65];
			qs_hex(f->sha256, 32, hex);
			json_t *o = json_object();
			json_object_set_new(o, "path", json_string(f->path));
			json_object_set_new(o, "size", json_integer((json_int_t)f->size));
			json_object_set_new(o, "sha256", json_string(hex));
			json_object_set_new(o, "first_extent", json_integer((json_int_t)f->first_extent));
			json_object_set_new(o, "extents", json_integer((json_int_t)f->n_extents));
			json_array_append_new(arr, o);
		}
		json_object_set_new(views, VIEW_KEY[v], arr);
	}
	json_object_set_new(root, "streams", streams);
	json_object_set_new(root, "tensors", tensors);
	json_object_set_new(root, "views", views);
	char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (s)
		*len = strlen(s);
	return s;
}

/* ---- loading ----------------------------------------------------------- */

typedef struct jctx { const char *where; qs_error *err; int bad; } jctx;

static uint64_t get_u64(jctx *c, json_t *o, const char *key, const char *what)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		if (!c->bad)
			qs_fail(c->err, EIO, "%s: damaged manifest: %s has no valid '%s'", c->where, what, key);
		c->bad = 1;
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

static char *get_str(jctx *c, json_t *o, const char *key, const char *what)
{
	json_t *v = json_object_get(o, key);
	char *s = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
	if (!s) {
		if (!c->bad)
			qs_fail(c->err, EIO, "%s: damaged manifest: %s has no valid '%s'", c->where, what, key);
		c->bad = 1;
	}
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

static json_t *get_array(jctx *c, json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a)) {
		if (!c->bad)
			qs_fail(c->err, EIO, "%s: damaged manifest: no '%s' array", c->where, key);
		c->bad = 1;
	}
	return a;
}

int qs_manifest_load(qs_index *ix, const char *text, size_t len, uint64_t n_chunks, uint64_t n_extents,
		     const char *where, qs_error *err)
{
	json_error_t je;
	jctx c = { where, err, 0 };
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return qs_fail(err, EIO, "%s: damaged manifest: not a JSON object (%s)", where, root ? "" : je.text);
	}
	json_t *fmt = json_object_get(root, "format"), *ver = json_object_get(root, "version");
	if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "qstore-manifest")
	    || !json_is_integer(ver) || json_integer_value(ver) != 1) {
		json_decref(root);
		return qs_fail(err, EIO, "%s: manifest format or version not supported", where);
	}
	ix->n_chunks = n_chunks;
	ix->n_extents = n_extents;
	ix->source_dtype = get_str(&c, root, "source_dtype", "manifest");
	json_t *fl = json_object_get(root, "floor_bytes");
	ix->floor_bytes = json_is_number(fl) ? json_number_value(fl) : 0;

	json_t *streams = get_array(&c, root, "streams"), *tensors = get_array(&c, root, "tensors");
	json_t *views = json_object_get(root, "views");
	if (c.bad || !json_is_object(views))
		goto fail_msg;
	ix->n_streams = json_array_size(streams);
	ix->streams = calloc(ix->n_streams ? ix->n_streams : 1, sizeof(*ix->streams));
	if (!ix->streams)
		goto oom;
	for (size_t i = 0; i < ix->n_streams && !c.bad; i++) {
		json_t *o = json_array_get(streams, i);
		qs_stream *s = &ix->streams[i];
		s->scale_stream = -1;
		s->name = get_str(&c, o, "name", "stream");
		s->kind = (int)get_u64(&c, o, "kind", "stream");
		s->fmt = (int)get_u64(&c, o, "fmt", "stream");
		s->esize = (uint32_t)get_u64(&c, o, "esize", "stream");
		s->elems = get_u64(&c, o, "elems", "stream");
		s->chunk_elems = get_u64(&c, o, "chunk_elems", "stream");
		s->first_chunk = get_u64(&c, o, "first_chunk", "stream");
		s->n_chunks = get_u64(&c, o, "chunks", "stream");
		if (s->kind == QS_STREAM_QUANT) {
			s->cols = get_u64(&c, o, "cols", "stream");
			s->scale_stream = (int64_t)get_u64(&c, o, "scale_stream", "stream");
		}
	}
	ix->n_tensors = json_array_size(tensors);
	ix->tensors = calloc(ix->n_tensors ? ix->n_tensors : 1, sizeof(*ix->tensors));
	if (!ix->tensors)
		goto oom;
	for (size_t i = 0; i < ix->n_tensors && !c.bad; i++) {
		json_t *o = json_array_get(tensors, i), *shape = json_object_get(o, "shape");
		json_t *st = json_object_get(o, "stream"), *fb = json_object_get(o, "floor_bytes");
		qs_tensor *t = &ix->tensors[i];
		t->name = get_str(&c, o, "name", "tensor");
		t->file = get_str(&c, o, "file", "tensor");
		t->dtype = get_str(&c, o, "dtype", "tensor");
		t->reason = get_str(&c, o, "reason", "tensor");
		t->nbytes = get_u64(&c, o, "nbytes", "tensor");
		t->stored_bytes = get_u64(&c, o, "stored_bytes", "tensor");
		t->quantized = json_is_true(json_object_get(o, "quantized"));
		t->floor_bytes = json_is_number(fb) ? json_number_value(fb) : 0;
		t->stream = json_is_integer(st) ? json_integer_value(st) : -2;
		if (!json_is_array(shape) || json_array_size(shape) > QS_MAX_DIMS || t->stream < -1
		    || t->stream >= (int64_t)ix->n_streams) {
			if (!c.bad)
				qs_fail(err, EIO, "%s: damaged manifest: tensor %zu has a bad shape or stream", where, i);
			c.bad = 1;
			break;
		}
		t->ndim = (int)json_array_size(shape);
		for (int d = 0; d < t->ndim; d++) {
			json_t *x = json_array_get(shape, (size_t)d);
			t->shape[d] = json_is_integer(x) && json_integer_value(x) >= 0 ? (uint64_t)json_integer_value(x) : 0;
		}
	}
	for (int v = 0; v < 2 && !c.bad; v++) {
		json_t *arr = get_array(&c, views, VIEW_KEY[v]);
		if (c.bad)
			break;
		ix->n_files[v] = json_array_size(arr);
		ix->files[v] = calloc(ix->n_files[v] ? ix->n_files[v] : 1, sizeof(qs_vfile));
		if (!ix->files[v])
			goto oom;
		for (size_t i = 0; i < ix->n_files[v] && !c.bad; i++) {
			json_t *o = json_array_get(arr, i);
			qs_vfile *f = &ix->files[v][i];
			f->path = get_str(&c, o, "path", "file");
			f->size = get_u64(&c, o, "size", "file");
			f->first_extent = get_u64(&c, o, "first_extent", "file");
			f->n_extents = get_u64(&c, o, "extents", "file");
			json_t *h = json_object_get(o, "sha256");
			if (!c.bad && (!json_is_string(h) || unhex(json_string_value(h), f->sha256, 32))) {
				qs_fail(err, EIO, "%s: damaged manifest: file '%s' has no valid sha256", where, f->path);
				c.bad = 1;
			}
		}
	}
	json_decref(root);
	return c.bad ? -1 : 0;
oom:
	json_decref(root);
	return qs_fail(err, ENOMEM, "%s: out of memory loading the manifest", where);
fail_msg:
	json_decref(root);
	if (!c.bad)
		qs_fail(err, EIO, "%s: damaged manifest: no 'views' object", where);
	return -1;
}

/* ---- validation -------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
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
	qsort(paths, ix->n_files[v], sizeof(char *), cmp_str);
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

int qs_index_validate(qs_index *ix, uint64_t data_begin, uint64_t data_end, const char *where, qs_error *err)
{
	if (validate_streams(ix, data_begin, data_end, where, err))
		return -1;
	for (int v = 0; v < 2; v++)
		if (validate_files(ix, v, where, err))
			return -1;
	return 0;
}
