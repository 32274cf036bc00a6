/* plan_int8.c - the INT8 view (FORMAT.md section 5): a generated
 * safetensors header per source file laid out like the reference writer,
 * config.json with quantization_config, the shard index with the scales,
 * and every other file shared with the high view. */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct i8ent {
	const char *name;     /* owned by the plan or by `own` */
	char *own;
	const char *dtype;
	int dsize, ndim;
	uint64_t shape[QS_MAX_DIMS];
	int64_t stream;
	int face;
	uint64_t len;
} i8ent;

static int cmp_i8(const void *a, const void *b)
{
	const i8ent *x = a, *y = b;
	if (x->dsize != y->dsize)
		return y->dsize - x->dsize;
	return strcmp(x->name, y->name);
}

/* Header bytes (8-byte length + JSON padded to a multiple of 8) of an INT8
 * safetensors file laid out like the reference writer: largest dtype first,
 * then by name, so every tensor is naturally aligned.  The JSON is written
 * entry by entry (one small tree at a time) so that a file with 100,000
 * tensors does not build one huge tree. */
static uint8_t *i8_header(const qs_st_file *st, i8ent *e, size_t n, uint64_t *hlen, uint64_t *data)
{
	qs_strbuf b = { 0 };
	qs_st_header_begin(&b, st->metadata);
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		qs_st_header_add(&b, &(qs_st_entry){ e[i].name, e[i].dtype, e[i].ndim, e[i].shape, at, at + e[i].len });
		at += e[i].len;
	}
	if (qs_st_header_end(&b))
		return NULL;
	*hlen = b.len;
	*data = at;
	return (uint8_t *)b.p;
}

static int plan_i8_st(qs_plan *p, size_t fi, const int64_t *tstream, const int64_t *sstream, size_t t0,
		      uint64_t *data_bytes, qs_error *err)
{
	qs_srcfile *f = &p->files[fi];
	size_t n = 0;
	i8ent *e = calloc(2 * f->st.n + 1, sizeof(i8ent));
	if (!e)
		return qs_fail(err, ENOMEM, "out of memory");
	for (size_t j = 0; j < f->st.n; j++) {
		const qs_st_tensor *t = &f->st.t[j];
		const qs_tensor *x = &p->ix.tensors[t0 + j];
		i8ent *a = &e[n++];
		a->name = t->name;
		a->ndim = t->ndim;
		memcpy(a->shape, t->shape, sizeof(a->shape));
		a->stream = tstream[j];
		if (x->quantized) {
			a->dtype = "I8";
			a->dsize = 1;
			a->face = QS_FACE_Q;
			a->len = t->shape[0] * t->shape[1];
			i8ent *s = &e[n++];
			if (asprintf(&s->own, "%s_scale", t->name) < 0)
				s->own = NULL;
			s->name = s->own ? s->own : "";
			s->dtype = t->dtype;
			s->dsize = t->dsize;
			s->ndim = 2;
			s->shape[0] = t->shape[0];
			s->shape[1] = 1;
			s->stream = sstream[j];
			s->face = QS_FACE_HIGH;
			s->len = t->shape[0] * (uint64_t)t->dsize;
		} else {
			a->dtype = t->dtype;
			a->dsize = t->dsize;
			a->face = QS_FACE_HIGH;
			a->len = t->end - t->begin;
		}
	}
	qsort(e, n, sizeof(i8ent), cmp_i8);
	uint64_t hlen, data;
	uint8_t *hdr = i8_header(&f->st, e, n, &hlen, &data);
	int rc = -1;
	qs_vfile *vf = hdr ? qs_plan_add_vfile(p, QS_VIEW_INT8, f->rel, err) : NULL;
	size_t vi = p->ix.n_files[QS_VIEW_INT8] - 1;
	int64_t hs = vf ? qs_plan_add_blob(p, f->rel, hdr, 0, 0, hlen, -1, 12, err) : -1;
	if (!hdr)
		qs_fail(err, ENOMEM, "out of memory");
	else if (hs < 0)
		free(hdr);
	else if (!qs_plan_add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], hs, QS_FACE_HIGH, hlen, err)) {
		rc = 0;
		for (size_t i = 0; i < n && !rc; i++)
			rc = qs_plan_add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], e[i].stream, e[i].face, e[i].len, err);
		*data_bytes = data;
	}
	for (size_t i = 0; i < n; i++)
		free(e[i].own);
	free(e);
	return rc;
}

/* compressed-tensors quantises every Linear module not in `ignore`, so
 * `ignore` must name each Linear left in float: the 2-D float weights we did
 * not quantise, and lm_head when it is tied to the embeddings (it is then
 * absent from the checkpoint but still a Linear module). */
static json_t *quantization_config(const qs_plan *p, const json_t *config)
{
	json_t *ignore = json_array();
	int lm_head = 0;
	for (size_t i = 0; i < p->ix.n_tensors; i++) {
		const qs_tensor *t = &p->ix.tensors[i];
		size_t l = strlen(t->name);
		lm_head |= !strcmp(t->name, "lm_head.weight");
		if (!t->quantized && t->ndim == 2 && l > 7 && !strcmp(t->name + l - 7, ".weight")
		    && qs_fmt_from_dtype(t->dtype) && !qs_quant_is_embedding(t->name))
			json_array_append_new(ignore, json_stringn(t->name, l - 7));
	}
	if (!lm_head && json_is_true(json_object_get(config, "tie_word_embeddings")))
		json_array_append_new(ignore, json_string("lm_head"));
	/* the format is given per group too: loaders infer a group's format
	 * from its scheme when it is missing, and infer pack-quantized.
	 * run_compressed false: transformers then decompresses the weights once
	 * at load; with compressed modules, a loader that calls the model's
	 * forward itself (sentence-transformers 6) multiplies float activations
	 * by the int8 weights and fails.  Engines with INT8 kernels (vLLM) read
	 * the scheme and do not look at it. */
	return json_pack("{s:s, s:s, s:s, s:b, s:{s:{s:[s], s:{s:i, s:s, s:b, s:s, s:b}, s:n, s:n, s:s}}, s:o}",
			 "quant_method", "compressed-tensors", "format", "naive-quantized",
			 "quantization_status", "compressed", "run_compressed", 0, "config_groups", "group_0", "targets",
			 "Linear", "weights", "num_bits", 8, "type", "int", "symmetric", 1, "strategy", "channel",
			 "dynamic", 0, "input_activations", "output_activations", "format", "naive-quantized", "ignore",
			 ignore);
}

static int add_json_blob(qs_plan *p, const char *rel, json_t *j, size_t flags, qs_error *err)
{
	char *s = json_dumps(j, flags);
	if (!s)
		return qs_fail(err, ENOMEM, "out of memory");
	size_t len = strlen(s);
	s[len] = '\n';   /* json_dumps NUL-terminates; a trailing newline as editors write */
	qs_vfile *vf = qs_plan_add_vfile(p, QS_VIEW_INT8, rel, err);
	size_t vi = p->ix.n_files[QS_VIEW_INT8] - 1;
	int64_t bs = vf ? qs_plan_add_blob(p, rel, (uint8_t *)s, 0, 0, len + 1, -1, 12, err) : -1;
	if (bs < 0) {
		free(s);
		return -1;
	}
	return qs_plan_add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], bs, QS_FACE_HIGH, len + 1, err);
}

/* The shard index of the INT8 view: every entry kept, each quantised
 * weight followed by its weight_scale in the same shard, total_size of the
 * INT8 shards. */
static void rewrite_index(qs_plan *p, const qs_srcfile *f, json_t *j, json_t *quantized, const uint64_t *i8data)
{
	json_t *wm = json_object_get(j, "weight_map"), *nw = json_object(), *v;
	const char *name;
	uint64_t total = 0;
	char *dir = qs_plan_dir_of(f->rel);
	json_t *seen = json_object();
	json_object_foreach(wm, name, v) {
		const char *shard = json_string_value(v);
		json_object_set(nw, name, v);
		if (json_object_get(quantized, name)) {
			char *sc = NULL;
			if (asprintf(&sc, "%s_scale", name) >= 0)
				json_object_set(nw, sc, v);
			free(sc);
		}
		if (!json_object_get(seen, shard)) {
			char *rel = NULL;
			qs_srcfile *sf = NULL;
			json_object_set_new(seen, shard, json_true());
			if (asprintf(&rel, "%s%s", dir, shard) >= 0 && (sf = qs_plan_find_file(p, rel)))
				total += i8data[sf - p->files];
			free(rel);
		}
	}
	free(dir);
	json_decref(seen);
	json_object_set_new(j, "weight_map", nw);
	json_t *meta = json_object_get(j, "metadata");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(j, "metadata", meta);
	}
	json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
}

/* A file the INT8 view shares with the high view (tokenizer, README...).
 * High view file FI is source file FI: the high view lists every source file
 * once, in order. */
static int share_file(qs_plan *p, size_t fi, qs_error *err)
{
	const qs_vfile *hf = &p->ix.files[QS_VIEW_HIGH][fi];
	if (!qs_plan_add_vfile(p, QS_VIEW_INT8, p->files[fi].rel, err))
		return -1;
	size_t vi = p->ix.n_files[QS_VIEW_INT8] - 1;
	for (uint64_t k = 0; k < hf->n_extents; k++) {
		qs_extent x = p->ix.extents[hf->first_extent + k];
		if (qs_plan_add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], x.stream, (int)x.face, x.len, err))
			return -1;
	}
	return 0;
}

/* config.json gains quantization_config, a shard index is rewritten, every
 * other non-safetensors file is shared with the high view */
static int plan_i8_other(qs_plan *p, size_t i, json_t *quantized, const uint64_t *i8data, qs_error *err)
{
	qs_srcfile *f = &p->files[i];
	json_t *j = NULL;
	int rc;
	if (json_object_size(quantized) && !strcmp(f->rel, "config.json") && (j = qs_plan_load_json(p, f, NULL))
	    && json_is_object(j)) {
		json_object_set_new(j, "quantization_config", quantization_config(p, j));
		rc = add_json_blob(p, f->rel, j, JSON_INDENT(2), err);
	} else if (qs_ends_with(f->rel, ".safetensors.index.json") && (j = qs_plan_load_json(p, f, err))) {
		rewrite_index(p, f, j, quantized, i8data);
		rc = add_json_blob(p, f->rel, j, JSON_INDENT(2) | JSON_SORT_KEYS, err);
	} else {
		rc = share_file(p, i, err);
	}
	json_decref(j);
	return rc;
}

int qs_plan_int8_view(qs_plan *p, int64_t *const *ts, int64_t *const *ss, const size_t *t0, qs_error *err)
{
	/* generated safetensors first: the rewritten index needs their sizes */
	uint64_t *i8data = calloc(p->n_files + 1, sizeof(uint64_t));
	json_t *quantized = json_object();
	int rc = i8data && quantized ? 0 : qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->ix.n_tensors && !rc; i++)
		if (p->ix.tensors[i].quantized)
			json_object_set_new(quantized, p->ix.tensors[i].name, json_true());
	for (size_t i = 0; i < p->n_files && !rc; i++)
		if (p->files[i].is_st)
			rc = plan_i8_st(p, i, ts[i], ss[i], t0[i], &i8data[i], err);
	for (size_t i = 0; i < p->n_files && !rc; i++)
		if (!p->files[i].is_st)
			rc = plan_i8_other(p, i, quantized, i8data, err);
	json_decref(quantized);
	free(i8data);
	return rc;
}
