/* inspect.c - read-only accessors: files, tensors, summary, info JSON. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "container.h"

void qs_container_summary(const qs_container *c, qs_summary *o)
{
	const qs_index *ix = c->ix;
	memset(o, 0, sizeof(*o));
	o->source_dtype = ix->source_dtype;
	o->container_bytes = ix->container_bytes;
	o->floor_bytes = ix->floor_bytes;
	o->n_chunks = ix->n_chunks;
	o->n_tensors = ix->n_tensors;
	for (size_t i = 0; i < ix->n_streams; i++) {
		const qs_stream *st = &ix->streams[i];
		if (st->kind != QS_STREAM_QUANT)
			continue;
		o->quant_chunks += st->n_chunks;
		for (uint64_t k = 0; k < st->n_chunks; k++) {
			const qs_chunk *ch = &ix->chunks[st->first_chunk + k];
			uint8_t tag = 0;
			o->derived_chunks += ch->len_a == 1;   /* QDRV (map.c) */
			if (ch->len_a > 1 && c->fd >= 0 && !qs_pread_full(c->fd, &tag, 1, ch->off))
				o->tuple_chunks += tag == QS_CODEC_QTUP;
		}
	}
	for (size_t i = 0; i < ix->n_files[QS_VIEW_HIGH]; i++)
		o->high_bytes += ix->files[QS_VIEW_HIGH][i].size;
	for (size_t i = 0; i < ix->n_files[QS_VIEW_INT8]; i++)
		o->int8_bytes += ix->files[QS_VIEW_INT8][i].size;
	for (int v = QS_VIEW_INT2; v < QS_N_VIEWS; v++)
		for (size_t i = 0; i < ix->n_files[v]; i++)
			o->low_bytes[v] += ix->files[v][i].size;
}

size_t qs_file_count(const qs_container *c, qs_view v)
{
	return (unsigned)v < QS_N_VIEWS ? c->ix->n_files[v] : 0;
}

int qs_file_get(const qs_container *c, qs_view v, size_t i, qs_file_info *o)
{
	if ((unsigned)v >= QS_N_VIEWS || i >= c->ix->n_files[v])
		return -1;
	const qs_vfile *f = &c->ix->files[v][i];
	o->path = f->path;
	o->size = f->size;
	memcpy(o->sha256, f->sha256, 32);
	o->has_sha256 = !f->derived;
	o->merged = f->merged;
	return 0;
}

ssize_t qs_file_find(const qs_container *c, qs_view v, const char *path)
{
	for (size_t i = 0; (unsigned)v < QS_N_VIEWS && i < c->ix->n_files[v]; i++)
		if (!strcmp(c->ix->files[v][i].path, path))
			return (ssize_t)i;
	return -1;
}

const char *qs_view_dir(const qs_container *c, qs_view v)
{
	return (unsigned)v < QS_N_VIEWS ? c->dir[v] : NULL;
}

const char *qs_view_name(qs_view v)
{
	return (unsigned)v < QS_N_VIEWS ? qs_view_names[v] : NULL;
}

int qs_view_parse(const char *name)
{
	for (int v = 0; name && v < QS_N_VIEWS; v++)
		if (!strcmp(name, qs_view_names[v]))
			return v;
	return -1;
}

const char *qs_single_file_name(const qs_container *c, qs_view v)
{
	return (unsigned)v < QS_N_VIEWS && c->dir[v] ? c->single_name[v] : NULL;
}

ssize_t qs_single_file(const qs_container *c, qs_view v, const char **why)
{
	int ok = (unsigned)v < QS_N_VIEWS && c->dir[v];
	if (why)
		*why = ok ? c->single_why[v] : NULL;
	return ok ? c->single[v] : -1;
}

const char *qs_container_path(const qs_container *c)
{
	return c->path;
}

size_t qs_tensor_count(const qs_container *c)
{
	return c->ix->n_tensors;
}

int qs_tensor_get(const qs_container *c, size_t i, qs_tensor_info *o)
{
	if (i >= c->ix->n_tensors)
		return -1;
	const qs_tensor *t = &c->ix->tensors[i];
	o->name = t->name;
	o->file = t->file;
	o->dtype = t->dtype;
	o->ndim = t->ndim;
	o->shape = t->shape;
	o->nbytes = t->nbytes;
	o->quantized = t->quantized;
	o->reason = t->reason;
	o->stored_bytes = t->stored_bytes;
	o->floor_bytes = t->floor_bytes;
	return 0;
}

char *qs_info_json(const qs_container *c, qs_error *err)
{
	qs_summary s;
	const qs_index *ix = c->ix;
	qs_container_summary(c, &s);
	json_t *tensors = json_array(), *views = json_object();
	for (size_t i = 0; i < ix->n_tensors; i++)
		json_array_append_new(tensors, qs_json_tensor(&ix->tensors[i]));
	for (int v = 0; v < QS_N_VIEWS; v++) {
		if (!c->dir[v])
			continue;
		json_t *files = json_array();
		for (size_t i = 0; i < ix->n_files[v]; i++)
			json_array_append_new(files, qs_json_file(&ix->files[v][i], v));
		json_object_set_new(views, qs_view_names[v], files);
	}
	json_t *m = json_pack("{s:{s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:f, s:f}, s:o, s:o}", "summary",
			      "container", c->path, "source_dtype", s.source_dtype ? s.source_dtype : "",
			      "container_bytes", (json_int_t)s.container_bytes, "high_bytes", (json_int_t)s.high_bytes,
			      "int8_bytes", (json_int_t)s.int8_bytes, "floor_bytes", s.floor_bytes,
			      "chunks", (json_int_t)s.n_chunks, "quant_chunks", (json_int_t)s.quant_chunks,
			      "derived_chunks", (json_int_t)s.derived_chunks, "tuple_chunks", (json_int_t)s.tuple_chunks,
			      "ratio_vs_floor", s.floor_bytes > 0 ? (double)s.container_bytes / s.floor_bytes : 0.0,
			      "ratio_vs_both_views", s.high_bytes + s.int8_bytes
				      ? (double)s.container_bytes / (double)(s.high_bytes + s.int8_bytes) : 0.0,
			      "tensors", tensors, "views", views);
	char *out = m ? json_dumps(m, JSON_INDENT(2)) : NULL;
	json_decref(m);
	if (!out)
		qs_fail(err, ENOMEM, "out of memory");
	return out;
}
