/*
 * merged.c - the single-file view of a sharded model: one valid safetensors
 * file holding every tensor of the shards, built in memory from the shard
 * headers when a container is opened (nothing is stored for it).
 *
 * Its header is generated (an in-memory stream); its data is the shards'
 * data sections back to back, so its extents are the shards' extents after
 * their headers: reading it decodes exactly what reading the shards would.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "../common/container.h"
#include "../common/safetensors.h"

/* The weight files of a view: its top-level .safetensors files (the shards
 * of a sharded checkpoint), sorted by name. */
static size_t weight_files(const qs_index *ix, int v, size_t *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < ix->n_files[v] && n < max; i++) {
		const char *p = ix->files[v][i].path;
		size_t l = strlen(p);
		if (!strchr(p, '/') && l > 12 && !strcmp(p + l - 12, ".safetensors"))
			out[n++] = i;
	}
	/* views list them in path order already; keep it certain */
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0 && strcmp(ix->files[v][out[b - 1]].path, ix->files[v][out[b]].path) > 0; b--) {
			size_t t = out[b];
			out[b] = out[b - 1];
			out[b - 1] = t;
		}
	return n;
}

static int read_header(qs_container *c, qs_reader *r, int v, size_t fi, qs_st_file *st, uint64_t *hlen,
		       qs_error *err)
{
	const qs_vfile *f = &c->ix->files[v][fi];
	uint8_t len8[8];
	uint64_t n;
	if (qs_read(r, (qs_view)v, fi, 0, len8, 8, err) != 8
	    || qs_st_header_len(f->path, len8, f->size, &n, err))
		return -1;
	uint8_t *js = malloc(n);
	if (!js)
		return qs_fail(err, ENOMEM, "out of memory");
	int rc = qs_read(r, (qs_view)v, fi, 8, js, n, err) == (ssize_t)n ? qs_st_parse(f->path, js, n, f->size, st, err) : -1;
	free(js);
	*hlen = 8 + n;
	return rc;
}

ssize_t qs_add_merged(qs_container *c, qs_view v, const char *name, qs_error *err)
{
	qs_index *ix = c->ix;
	if ((unsigned)v > 1 || !qs_path_ok(name) || qs_file_find(c, v, name) >= 0)
		return qs_fail(err, EINVAL, "%s: bad or existing name for a merged view: %s", c->path, name);
	size_t *shards = malloc((ix->n_files[v] + 1) * sizeof(size_t));
	if (!shards)
		return qs_fail(err, ENOMEM, "out of memory");
	size_t ns = weight_files(ix, v, shards, ix->n_files[v]);
	if (ns <= 1) {
		ssize_t only = ns ? (ssize_t)shards[0] : -1;
		free(shards);
		return only;   /* one weight file is its own single-file view; none, none */
	}
	qs_reader *r = qs_reader_new(c);
	qs_strbuf b = { 0 };
	ssize_t rc = r ? 0 : qs_fail(err, ENOMEM, "out of memory");
	uint64_t base = 0, *hlen = calloc(ns, sizeof(uint64_t));
	if (!hlen && !rc)
		rc = qs_fail(err, ENOMEM, "out of memory");
	qs_strbuf_add(&b, "\0\0\0\0\0\0\0\0{", 9);
	for (size_t k = 0; k < ns && !rc; k++) {
		qs_st_file st;
		if (read_header(c, r, v, shards[k], &st, &hlen[k], err)) {
			rc = -1;
			break;
		}
		if (k == 0) {
			json_t *meta = st.metadata ? json_incref(st.metadata) : json_pack("{s:s}", "format", "pt");
			char *m = json_dumps(meta, JSON_COMPACT | JSON_ENSURE_ASCII);
			json_decref(meta);
			qs_strbuf_add(&b, "\"__metadata__\":", 15);
			if (m)
				qs_strbuf_add(&b, m, strlen(m));
			else
				b.oom = 1;
			free(m);
		}
		for (size_t i = 0; i < st.n; i++) {
			const qs_st_tensor *t = &st.t[i];
			json_t *shape = json_array(), *key = json_string(t->name);
			for (int d = 0; d < t->ndim; d++)
				json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
			json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", t->dtype, "shape", shape, "data_offsets",
					      (json_int_t)(base + t->begin), (json_int_t)(base + t->end));
			char *ks = json_dumps(key, JSON_ENCODE_ANY | JSON_ENSURE_ASCII), *es = json_dumps(e, JSON_COMPACT);
			qs_strbuf_add(&b, ",", 1);
			if (ks && es) {
				qs_strbuf_add(&b, ks, strlen(ks));
				qs_strbuf_add(&b, ":", 1);
				qs_strbuf_add(&b, es, strlen(es));
			} else {
				b.oom = 1;
			}
			free(ks);
			free(es);
			json_decref(key);
			json_decref(e);
		}
		base += ix->files[v][shards[k]].size - hlen[k];
		qs_st_free(&st);
	}
	qs_strbuf_add(&b, "}", 1);
	while ((b.len - 8) % 8)
		qs_strbuf_add(&b, " ", 1);
	if (!rc && b.oom)
		rc = qs_fail(err, ENOMEM, "out of memory");
	if (!rc)
		wr64(b.p, b.len - 8);
	qs_reader_free(r);
	if (!rc)
		rc = qs_index_add_mem_file(ix, v, name, (uint8_t *)b.p, b.len, shards, ns, hlen, err);
	else
		free(b.p);
	free(hlen);
	free(shards);
	return rc;
}
