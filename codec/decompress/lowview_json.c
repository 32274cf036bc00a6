/*
 * lowview_json.c - a lower view's config.json and shard indexes: the INT8
 * view's, with quantization_config for n bits and the weight map renamed
 * to the packed tensors (FORMAT.md section 7).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lowview.h"

/* config.json: the INT8 view's quantization_config (its ignore list, its
 * loader settings) with pack-quantized n-bit weights; the weights this view
 * leaves in float join `ignore`.  0 when there is none (nothing quantised). */
static int low_config(lv *b, json_t *j)
{
	json_t *qc = json_object_get(j, "quantization_config");
	json_t *g = json_object_get(json_object_get(qc, "config_groups"), "group_0");
	json_t *w = json_object_get(g, "weights"), *ig = json_object_get(qc, "ignore"), *v;
	if (!json_is_object(w) || !json_is_array(ig))
		return 0;
	json_object_set_new(qc, "format", json_string("pack-quantized"));
	json_object_set_new(g, "format", json_string("pack-quantized"));
	json_object_set_new(w, "num_bits", json_integer(b->n));
	json_object_set_new(w, "strategy", json_string(b->n == 4 ? "group" : "channel"));
	json_object_set_new(w, "group_size", b->n == 4 ? json_integer(QS_INT4_GROUP) : json_null());
	const char *name;
	json_object_foreach(b->floated, name, v) {
		size_t l = strlen(name);
		json_array_append_new(ig, json_stringn(name, l > 7 && !strcmp(name + l - 7, ".weight") ? l - 7 : l));
	}
	return 1;
}

/* Is NAME the scale of a weight this view leaves in float? */
static int floated_scale(const lv *b, const char *name)
{
	size_t l = strlen(name);
	if (l <= 6 || strcmp(name + l - 6, "_scale"))
		return 0;
	char *w = strndup(name, l - 6);
	int yes = w && json_object_get(b->floated, w);
	free(w);
	return yes;
}

/* A shard index: each packed weight W is listed as W_packed and W_shape
 * (W_scale is listed already), a weight left in float loses its W_scale;
 * total_size counts this view's shards. */
static int low_index(lv *b, const char *rel, json_t *j)
{
	json_t *wm = json_object_get(j, "weight_map"), *nw, *seen, *v;
	const char *name, *slash = strrchr(rel, '/');
	int dl = slash ? (int)(slash - rel) + 1 : 0;
	json_int_t total = 0;
	if (!json_is_object(wm))
		return 0;
	nw = json_object();
	seen = json_object();
	json_object_foreach(wm, name, v) {
		char *alt = NULL;
		if (json_object_get(b->packed, name)) {
			if (asprintf(&alt, "%s_packed", name) >= 0)
				json_object_set(nw, alt, v);
			free(alt);
			if (asprintf(&alt, "%s_shape", name) >= 0)
				json_object_set(nw, alt, v);
			free(alt);
		} else if (!floated_scale(b, name)) {
			json_object_set(nw, name, v);
		}
		const char *shard = json_string_value(v);
		if (shard && !json_object_get(seen, shard) && asprintf(&alt, "%.*s%s", dl, rel, shard) >= 0) {
			json_object_set_new(seen, shard, json_true());
			total += json_integer_value(json_object_get(b->data_bytes, alt));
			free(alt);
		}
	}
	json_decref(seen);
	json_object_set_new(j, "weight_map", nw);
	json_t *meta = json_object_get(j, "metadata");
	if (!json_is_object(meta))
		json_object_set_new(j, "metadata", meta = json_object());
	json_object_set_new(meta, "total_size", json_integer(total));
	return 1;
}

int lv_json(lv *b, size_t fi, qs_error *err)
{
	const qs_vfile *f = &b->c->ix->files[QS_VIEW_INT8][fi];
	int is_config = !strcmp(f->path, "config.json"), is_index = qs_ends_with(f->path, ".safetensors.index.json");
	if (!is_config && !is_index)
		return 0;
	qs_error e = { 0 };
	json_t *j = lv_src_json(b, fi, &e);
	if (e.code) {
		if (err)
			*err = e;
		return -1;
	}
	/* JSON that is not the packer's (not an object, no quantization_config)
	 * is shared as it is, as the INT8 view shares it */
	int changed = json_is_object(j) && (is_config ? low_config(b, j) : low_index(b, f->path, j));
	char *out = changed ? json_dumps(j, JSON_INDENT(2) | (is_index ? JSON_SORT_KEYS : 0)) : NULL;
	json_decref(j);
	if (!changed)
		return 0;
	if (!out)
		return qs_fail(err, ENOMEM, "out of memory");
	size_t len = strlen(out);
	b->mem = (qs_strbuf){ out, len, len + 1, 0 };
	qs_strbuf_add(&b->mem, "\n", 1);   /* a trailing newline, as the INT8 view's */
	if (b->mem.oom)
		return qs_fail(err, ENOMEM, "out of memory");
	if (lv_add(b, QS_GEN_MEM, QS_FACE_HIGH, 0, b->mem.len, err) || lv_finish(b, f, 0, err) < 0)
		return -1;
	return 1;
}
