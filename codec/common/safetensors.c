/* safetensors.c - parse and validate a safetensors header (see safetensors.h). */
#include "safetensors.h"

#include <errno.h>
#include <stdlib.h>

static const struct { const char *name; int size; } DTYPES[] = {
	{ "BOOL", 1 }, { "U8", 1 }, { "I8", 1 }, { "F8_E5M2", 1 }, { "F8_E4M3", 1 },
	{ "F8_E8M0", 1 }, { "I16", 2 }, { "U16", 2 }, { "F16", 2 }, { "BF16", 2 },
	{ "I32", 4 }, { "U32", 4 }, { "F32", 4 }, { "I64", 8 }, { "U64", 8 },
	{ "F64", 8 }, { "C64", 8 },
};

int qs_dtype_size(const char *dtype)
{
	for (size_t i = 0; i < sizeof(DTYPES) / sizeof(DTYPES[0]); i++)
		if (!strcmp(DTYPES[i].name, dtype))
			return DTYPES[i].size;
	return 0;
}

int qs_st_header_len(const char *name, const uint8_t first8[8], uint64_t file_size,
		     uint64_t *n, qs_error *err)
{
	if (file_size < 8)
		return qs_fail(err, EINVAL, "%s: not a safetensors file: %llu bytes, shorter than the 8-byte header length",
			       name, (unsigned long long)file_size);
	*n = rd64(first8);
	if (*n > QS_ST_MAX_HEADER)
		return qs_fail(err, EINVAL, "%s: safetensors header length %llu exceeds the 100,000,000-byte limit",
			       name, (unsigned long long)*n);
	if (*n < 2 || *n > file_size - 8)
		return qs_fail(err, EINVAL, "%s: safetensors header length %llu does not fit a %llu-byte file (truncated?)",
			       name, (unsigned long long)*n, (unsigned long long)file_size);
	return 0;
}

static int cmp_begin(const void *a, const void *b)
{
	const qs_st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int parse_entry(const char *name, const char *key, json_t *v, qs_st_tensor *t, qs_error *err)
{
	json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
	       *off = json_object_get(v, "data_offsets");
	if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) || !json_is_array(off)
	    || json_array_size(off) != 2)
		return qs_fail(err, EINVAL, "%s: tensor '%s': entry needs dtype, shape and data_offsets [begin, end]", name, key);
	const char *d = json_string_value(dt);
	if (strlen(d) >= sizeof(t->dtype) || !*d)
		return qs_fail(err, EINVAL, "%s: tensor '%s': bad dtype", name, key);
	strcpy(t->dtype, d);
	t->dsize = qs_dtype_size(d);
	if (json_array_size(sh) > QS_MAX_DIMS)
		return qs_fail(err, EINVAL, "%s: tensor '%s': %zu dimensions (at most %d supported)", name, key,
			       json_array_size(sh), QS_MAX_DIMS);
	t->ndim = (int)json_array_size(sh);
	uint64_t elems = 1;
	for (int i = 0; i < t->ndim; i++) {
		json_t *x = json_array_get(sh, (size_t)i);
		if (!json_is_integer(x) || json_integer_value(x) < 0)
			return qs_fail(err, EINVAL, "%s: tensor '%s': shape must hold non-negative integers", name, key);
		t->shape[i] = (uint64_t)json_integer_value(x);
		if (mul_ovf(elems, t->shape[i], &elems))
			return qs_fail(err, EINVAL, "%s: tensor '%s': shape overflows 64 bits", name, key);
	}
	json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
	if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0
	    || json_integer_value(e) < json_integer_value(b))
		return qs_fail(err, EINVAL, "%s: tensor '%s': data_offsets must be 0 <= begin <= end", name, key);
	t->begin = (uint64_t)json_integer_value(b);
	t->end = (uint64_t)json_integer_value(e);
	uint64_t bytes;
	if (t->dsize && (mul_ovf(elems, (uint64_t)t->dsize, &bytes) || bytes != t->end - t->begin))
		return qs_fail(err, EINVAL, "%s: tensor '%s': %s shape needs %llu bytes but data_offsets span %llu",
			       name, key, d, (unsigned long long)(elems * (uint64_t)t->dsize),
			       (unsigned long long)(t->end - t->begin));
	return 0;
}

int qs_st_parse(const char *name, const uint8_t *js, size_t n, uint64_t file_size,
		qs_st_file *out, qs_error *err)
{
	json_error_t je;
	memset(out, 0, sizeof(*out));
	out->header_len = n;
	out->data_start = 8 + n;
	json_t *root = json_loadb((const char *)js, n, JSON_REJECT_DUPLICATES, &je);   /* no \u0000: C strings would cut it */
	if (!root)
		return qs_fail(err, EINVAL, "%s: safetensors header is not valid JSON: %s (byte %d)", name, je.text, je.position);
	if (!json_is_object(root)) {
		json_decref(root);
		return qs_fail(err, EINVAL, "%s: safetensors header is not a JSON object", name);
	}
	size_t cap = json_object_size(root);
	out->t = calloc(cap ? cap : 1, sizeof(*out->t));
	if (!out->t) {
		json_decref(root);
		return qs_fail(err, ENOMEM, "%s: out of memory", name);
	}
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach(root, key, v) {
		if (!strcmp(key, "__metadata__")) {
			const char *mk;
			json_t *mv;
			if (!json_is_object(v)) {
				rc = qs_fail(err, EINVAL, "%s: __metadata__ must be an object of strings", name);
				break;
			}
			json_object_foreach(v, mk, mv) if (!json_is_string(mv)) {
				rc = qs_fail(err, EINVAL, "%s: __metadata__ value '%s' is not a string", name, mk);
				break;
			}
			if (rc)
				break;
			out->metadata = json_incref(v);
			continue;
		}
		qs_st_tensor *t = &out->t[out->n];
		if ((rc = parse_entry(name, key, v, t, err)))
			break;
		if (!(t->name = strdup(key))) {
			rc = qs_fail(err, ENOMEM, "%s: out of memory", name);
			break;
		}
		out->n++;
	}
	json_decref(root);
	if (rc) {
		qs_st_free(out);
		return rc;
	}
	qsort(out->t, out->n, sizeof(*out->t), cmp_begin);
	uint64_t at = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (out->t[i].begin != at) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s': data starts at %llu but the previous tensor ends at %llu (%s)",
				     name, out->t[i].name, (unsigned long long)out->t[i].begin,
				     (unsigned long long)at, out->t[i].begin > at ? "gap" : "overlap");
			qs_st_free(out);
			return rc;
		}
		at = out->t[i].end;
	}
	if (at != file_size - out->data_start) {
		rc = qs_fail(err, EINVAL, "%s: tensor data ends at byte %llu of the data section but the file holds %llu (%s)",
			     name, (unsigned long long)at, (unsigned long long)(file_size - out->data_start),
			     at > file_size - out->data_start ? "truncated" : "trailing bytes");
		qs_st_free(out);
		return rc;
	}
	return 0;
}

void qs_st_free(qs_st_file *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->t[i].name);
	free(f->t);
	json_decref(f->metadata);
	memset(f, 0, sizeof(*f));
}

/* ---- writing ------------------------------------------------------------ */

json_t *qs_shape_json(const uint64_t *shape, int ndim)
{
	json_t *a = json_array();
	for (int d = 0; d < ndim; d++)
		json_array_append_new(a, json_integer((json_int_t)shape[d]));
	return a;
}

/* Append J (consumed) as compact ASCII JSON. */
static void add_json(qs_strbuf *b, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!s)
		b->oom = 1;
	else
		qs_strbuf_add(b, s, strlen(s));
	free(s);
}

void qs_st_header_begin(qs_strbuf *b, const json_t *metadata)
{
	qs_strbuf_add(b, "\0\0\0\0\0\0\0\0{\"__metadata__\":", 24);
	add_json(b, metadata ? json_incref((json_t *)metadata) : json_pack("{s:s}", "format", "pt"));
}

void qs_st_header_add(qs_strbuf *b, const qs_st_entry *e)
{
	qs_strbuf_add(b, ",", 1);
	add_json(b, json_string(e->name));
	qs_strbuf_add(b, ":", 1);
	add_json(b, json_pack("{s:s, s:o, s:[I,I]}", "dtype", e->dtype, "shape", qs_shape_json(e->shape, e->ndim),
			      "data_offsets", (json_int_t)e->begin, (json_int_t)e->end));
}

int qs_st_header_end(qs_strbuf *b)
{
	qs_strbuf_add(b, "}", 1);
	while (!b->oom && (b->len - 8) % 8)
		qs_strbuf_add(b, " ", 1);
	if (b->oom) {
		free(b->p);
		memset(b, 0, sizeof(*b));
		return -1;
	}
	wr64(b->p, b->len - 8);
	return 0;
}
