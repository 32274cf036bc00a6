/*
 * lowview_st.c - a lower view's safetensors file, from the INT8 view's:
 * each quantised weight W (I8 codes, W_scale one per row) becomes
 * W_packed (I32 [rows, ceil(cols * n / 32)]), W_shape (I64 [2]) and W_scale
 * (the source float dtype, [rows, cols / 128] for INT4, [rows, 1]
 * otherwise); every other tensor is copied.  Laid out like the reference
 * writer (largest dtype first, then by name), as the INT8 view is.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lowview.h"

typedef struct ent {
	char *name;              /* owned */
	const char *dtype;
	int dsize, ndim;
	uint64_t shape[QS_MAX_DIMS];
	uint64_t len;
	enum { E_COPY, E_FACE, E_SHAPE } kind;
	uint64_t from;           /* COPY: offset in the INT8 file; SHAPE: in b->mem */
	uint32_t stream, face;   /* FACE */
	uint64_t val[2];         /* SHAPE: the weight's rows and columns */
} ent;

static int cmp_ent(const void *a, const void *b)
{
	const ent *x = a, *y = b;
	return x->dsize != y->dsize ? y->dsize - x->dsize : strcmp(x->name, y->name);
}

/* The QUANT stream whose INT8 face is exactly tensor T of file F (data at
 * DATA), or -1: an I8 matrix that one Q extent of a whole stream holds. */
static int64_t codes_of(const qs_index *ix, const qs_vfile *f, uint64_t data, const qs_st_tensor *t)
{
	uint64_t off = data + t->begin, len = t->end - t->begin;
	if (strcmp(t->dtype, "I8") || t->ndim != 2 || !len || !f->n_extents)
		return -1;
	const qs_extent *e = &ix->extents[qs_extent_at(ix, f, off)];
	const qs_stream *s = e->stream < ix->n_streams ? &ix->streams[e->stream] : NULL;
	int ok = s && e->file_off == off && e->len == len && e->face == QS_FACE_Q && e->stream_off == 0
		&& s->kind == QS_STREAM_QUANT && s->elems == len && t->shape[1] == s->cols;
	return ok ? (int64_t)e->stream : -1;
}

/* Index of the tensor named NAME + "_scale" in ST, or -1. */
static ssize_t scale_of(const qs_st_file *st, json_t *byname, const char *name)
{
	char *sc = NULL;
	if (asprintf(&sc, "%s_scale", name) < 0)
		return -1;
	json_t *v = json_object_get(byname, sc);
	free(sc);
	return v ? (ssize_t)json_integer_value(v) : -1;
}

static ent *push(ent *e, size_t *n, const char *name, const char *suffix, const char *dtype, int dsize)
{
	ent *x = &e[(*n)++];
	memset(x, 0, sizeof(*x));
	if (asprintf(&x->name, "%s%s", name, suffix) < 0)
		x->name = NULL;
	x->dtype = dtype;
	x->dsize = dsize;
	return x;
}

/* An entry of R x COLS whose bytes are FACE of stream S (index SI). */
static ent *face_entry(ent *e, size_t *n, const char *name, const char *suffix, const char *dtype, int dsize,
		       uint64_t rows, uint64_t cols, const qs_stream *s, uint32_t si, int face)
{
	ent *x = push(e, n, name, suffix, dtype, dsize);
	x->ndim = 2;
	x->shape[0] = rows;
	x->shape[1] = cols;
	x->kind = E_FACE;
	x->stream = si;
	x->face = (uint32_t)face;
	x->len = qs_face_bytes(s, face);
	return x;
}

/* The entries of weight T (codes in stream S) as this view presents it. */
static void weight_entries(lv *b, const qs_st_tensor *t, const qs_stream *s, ent *e, size_t *n)
{
	const qs_fmtinfo *fi = qs_fmt_info(s->fmt);
	const char *fdt = qs_fmt_dtype(s->fmt);
	uint64_t rows = t->shape[0];
	uint32_t si = (uint32_t)(s - b->c->ix->streams);
	if (!qs_low_ok(s, b->n)) {   /* left in its source dtype */
		face_entry(e, n, t->name, "", fdt, (int)fi->esize, rows, s->cols, s, si, QS_FACE_HIGH);
		json_object_set_new(b->floated, t->name, json_true());
		return;
	}
	face_entry(e, n, t->name, "_packed", "I32", 4, rows, qs_face_unit_bytes(s, QS_FACE_PACK(b->n)) / 4, s, si,
		   QS_FACE_PACK(b->n));
	ent *sh = push(e, n, t->name, "_shape", "I64", 8);
	sh->ndim = 1;
	sh->shape[0] = 2;
	sh->kind = E_SHAPE;
	sh->len = 16;
	sh->val[0] = rows;
	sh->val[1] = s->cols;
	face_entry(e, n, t->name, "_scale", fdt, (int)fi->esize, rows, b->n == 4 ? s->cols / QS_INT4_GROUP : 1, s, si,
		   QS_FACE_SCALE(b->n));
	json_object_set_new(b->packed, t->name, json_true());
}

/* Every entry of the view's file: ROLE[j] is the stream of a quantised
 * weight, -2 for its scale (replaced), -1 for a tensor copied as it is. */
static size_t entries(lv *b, const qs_st_file *st, const int64_t *role, ent *e)
{
	size_t n = 0;
	for (size_t j = 0; j < st->n; j++) {
		const qs_st_tensor *t = &st->t[j];
		if (role[j] >= 0) {
			weight_entries(b, t, &b->c->ix->streams[role[j]], e, &n);
		} else if (role[j] == -1) {
			ent *x = push(e, &n, t->name, "", t->dtype, t->dsize);
			x->ndim = t->ndim;
			memcpy(x->shape, t->shape, sizeof(x->shape));
			x->kind = E_COPY;
			x->from = st->data_start + t->begin;
			x->len = t->end - t->begin;
		}
	}
	return n;
}

/* Header, then the shapes, into b->mem; the extents in file order. */
static int layout(lv *b, const qs_st_file *st, const qs_vfile *f, ent *e, size_t n, uint64_t *data, qs_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (!e[i].name)
			return qs_fail(err, ENOMEM, "out of memory");
	qsort(e, n, sizeof(ent), cmp_ent);
	qs_st_header_begin(&b->mem, st->metadata);
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		qs_st_header_add(&b->mem, &(qs_st_entry){ e[i].name, e[i].dtype, e[i].ndim, e[i].shape, at, at + e[i].len });
		at += e[i].len;
	}
	if (qs_st_header_end(&b->mem))
		return qs_fail(err, ENOMEM, "out of memory");
	*data = at;
	int rc = lv_add(b, QS_GEN_MEM, QS_FACE_HIGH, 0, b->mem.len, err);
	for (size_t i = 0; i < n && !rc; i++) {
		if (e[i].kind == E_SHAPE) {
			uint8_t v[16];
			wr64(v, e[i].val[0]);
			wr64(v + 8, e[i].val[1]);
			e[i].from = b->mem.len;
			qs_strbuf_add(&b->mem, (const char *)v, 16);
			rc = b->mem.oom ? qs_fail(err, ENOMEM, "out of memory")
				: lv_add(b, QS_GEN_MEM, QS_FACE_HIGH, e[i].from, 16, err);
		} else if (e[i].kind == E_FACE) {
			rc = lv_add(b, e[i].stream, e[i].face, 0, e[i].len, err);
		} else {
			rc = lv_copy_range(b, f, e[i].from, e[i].len, err);
		}
	}
	return rc;
}

/* ROLE[j] for every tensor of INT8 file F (header ST), as entries() takes
 * it: the same for every view, so made once with the parse (lowview.c).  A
 * weight is replaced only with its scale: one per row, from the stream's
 * own scale stream.  0, or -1 with *err. */
int lv_roles(const qs_index *ix, const qs_vfile *f, const qs_st_file *st, int64_t **out, qs_error *err)
{
	json_t *byname = json_object();
	int64_t *role = calloc(st->n + 1, sizeof(int64_t));
	if (!byname || !role) {
		json_decref(byname);
		free(role);
		return qs_fail(err, ENOMEM, "out of memory");
	}
	for (size_t j = 0; j < st->n; j++) {
		json_object_set_new(byname, st->t[j].name, json_integer((json_int_t)j));
		role[j] = -1;
	}
	for (size_t j = 0; j < st->n; j++) {
		int64_t s = codes_of(ix, f, st->data_start, &st->t[j]);
		ssize_t k = s >= 0 ? scale_of(st, byname, st->t[j].name) : -1;
		if (k < 0)
			continue;
		const qs_st_tensor *t = &st->t[k];
		uint64_t off = st->data_start + t->begin;
		const qs_extent *x = &ix->extents[qs_extent_at(ix, f, off)];
		if (t->ndim == 2 && t->shape[1] == 1 && t->shape[0] == st->t[j].shape[0] && x->file_off == off
		    && x->len == t->end - t->begin && x->face == QS_FACE_HIGH && x->stream_off == 0
		    && (int64_t)x->stream == ix->streams[s].scale_stream) {
			role[j] = s;
			role[k] = -2;
		}
	}
	json_decref(byname);
	*out = role;
	return 0;
}

int lv_safetensors(lv *b, size_t fi, qs_error *err)
{
	const qs_vfile *f = &b->c->ix->files[QS_VIEW_INT8][fi];
	const int64_t *role;
	const qs_st_file *st = lv_src_header(b, fi, &role, err);   /* every view's: read only */
	uint64_t data = 0;
	if (!st)
		return -1;
	ent *e = calloc(3 * st->n + 1, sizeof(ent));
	int rc = e ? 0 : qs_fail(err, ENOMEM, "out of memory");
	size_t n = rc ? 0 : entries(b, st, role, e);
	if (!rc)
		rc = layout(b, st, f, e, n, &data, err);
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
	if (!rc)
		json_object_set_new(b->data_bytes, f->path, json_integer((json_int_t)data));
	return rc ? rc : lv_finish(b, f, 0, err) < 0 ? -1 : 0;
}
