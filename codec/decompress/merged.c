/*
 * merged.c - the single-file view of a sharded model: one valid safetensors
 * file holding every tensor of the shards, built in memory from the shard
 * headers when a container is opened with QS_OPEN_SINGLE_FILE (nothing is
 * stored for it).  An unsharded model's weight file is its own.
 *
 * Its header is generated (an in-memory stream); its data is the shards'
 * data sections back to back, so its extents are the shards' extents after
 * their headers: reading it decodes exactly what reading the shards would.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include <stdio.h>

#include "../common/safetensors.h"
#include "container.h"

static int cmp_path(const void *a, const void *b, void *files)
{
	const qs_vfile *f = files;
	return strcmp(f[*(const size_t *)a].path, f[*(const size_t *)b].path);
}

/* The weight files of a view into out[] (room for every file): its
 * top-level .safetensors files (the shards of a sharded checkpoint), sorted
 * by path. */
static size_t weight_files(const qs_index *ix, int v, size_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < ix->n_files[v]; i++) {
		const char *p = ix->files[v][i].path;
		size_t l = strlen(p);
		if (!strchr(p, '/') && l > 12 && !strcmp(p + l - 12, ".safetensors"))
			out[n++] = i;
	}
	qsort_r(out, n, sizeof(size_t), cmp_path, ix->files[v]);
	return n;
}

int qs_read_st_header(qs_container *c, qs_reader *r, int v, size_t fi, qs_st_file *st, uint64_t *hlen,
		      uint64_t *budget, qs_error *err)
{
	const qs_vfile *f = &c->ix->files[v][fi];
	uint8_t len8[8];
	uint64_t n;
	if (qs_read(r, (qs_view)v, fi, 0, len8, 8, err) != 8
	    || qs_st_header_len(f->path, len8, f->size, &n, err))
		return -1;
	if (8 + n > *budget)
		return qs_fail(err, EFBIG, "%s: '%s': shard headers hold more bytes than a %llu-byte container justifies",
			       c->path, f->path, (unsigned long long)c->ix->container_bytes);
	*budget -= 8 + n;
	uint8_t *js = malloc(n);
	if (!js)
		return qs_fail(err, ENOMEM, "out of memory");
	int rc = qs_read(r, (qs_view)v, fi, 8, js, n, err) == (ssize_t)n ? qs_st_parse(f->path, js, n, f->size, st, err) : -1;
	free(js);
	*hlen = 8 + n;
	return rc;
}

/* The merged header of shards SH[0..ns) into *b; their header lengths into
 * hlen[].  Metadata from the first shard; data offsets shifted by the data
 * of the shards before. */
static int merged_header(qs_container *c, int v, const size_t *sh, size_t ns, qs_strbuf *b, uint64_t *hlen,
			 qs_error *err)
{
	qs_reader *r = qs_reader_new(c, err);
	uint64_t base = 0, budget = QS_OPEN_READ_BUDGET(c->ix);
	int rc = r ? 0 : -1;
	for (size_t k = 0; k < ns && !rc; k++) {
		qs_st_file st;
		if ((rc = qs_read_st_header(c, r, v, sh[k], &st, &hlen[k], &budget, err)))
			break;
		if (k == 0)
			qs_st_header_begin(b, st.metadata);
		for (size_t i = 0; i < st.n; i++) {
			const qs_st_tensor *t = &st.t[i];
			qs_st_header_add(b, &(qs_st_entry){ t->name, t->dtype, t->ndim, t->shape, base + t->begin,
							     base + t->end });
		}
		base += c->ix->files[v][sh[k]].size - hlen[k];
		qs_st_free(&st);
	}
	qs_reader_free(r);
	if (!rc && qs_st_header_end(b))
		rc = qs_fail(err, ENOMEM, "out of memory");
	return rc;
}

/* View V's single file: the one weight file, or the merged one of several
 * (BUILD), or -1; *why says why merging failed.  -2: out of memory. */
static ssize_t single_file(qs_container *c, int v, int build, char **why)
{
	qs_index *ix = c->ix;
	size_t *shards = malloc((ix->n_files[v] + 1) * sizeof(size_t));
	uint64_t *hlen = calloc(ix->n_files[v] + 1, sizeof(uint64_t));
	size_t ns = shards && hlen ? weight_files(ix, v, shards) : 0;
	ssize_t rc = !shards || !hlen ? -2 : ns == 1 ? (ssize_t)shards[0] : -1;
	qs_error e = { 0 };
	if (ns > 1 && build && qs_file_find(c, (qs_view)v, c->single_name[v]) >= 0) {
		qs_fail(&e, EEXIST, "a file named %s exists already", c->single_name[v]);
	} else if (ns > 1 && build) {
		qs_strbuf b = { 0 };
		if (merged_header(c, v, shards, ns, &b, hlen, &e))
			free(b.p);
		else   /* takes b.p, even when it fails */
			rc = qs_index_add_mem_file(ix, v, c->single_name[v], (uint8_t *)b.p, b.len, shards, ns, hlen, &e);
		if (rc >= 0)
			ix->files[v][rc].merged = 1;
	}
	if (rc == -1 && e.code == ENOMEM)
		rc = -2;
	if (rc == -1 && e.code && !(*why = strdup(e.msg)))
		rc = -2;
	free(hlen);
	free(shards);
	return rc;
}

int qs_single_files_init(qs_container *c, int build, qs_error *err)
{
	const char *dt = c->ix->source_dtype ? c->ix->source_dtype : "";
	c->dir[QS_VIEW_HIGH] = !strcmp(dt, "F16") ? "fp16" : !strcmp(dt, "F32") ? "fp32" : "bf16";
	c->dir[QS_VIEW_INT8] = "int8";
	for (int v = 0; v < QS_N_VIEWS; v++) {
		if (!c->dir[v])
			continue;
		snprintf(c->single_name[v], sizeof(c->single_name[v]), "model-%s.safetensors", c->dir[v]);
		c->single[v] = single_file(c, v, build, &c->single_why[v]);
		if (c->single[v] == -2)
			return qs_fail(err, ENOMEM, "%s: out of memory", c->path);
	}
	return 0;
}
