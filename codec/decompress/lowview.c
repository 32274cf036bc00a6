/*
 * lowview.c - the lower views (int2..int7; FORMAT.md section 7), generated
 * when a container is opened with QS_OPEN_INT(n): nothing is stored for
 * them.  Each is the INT8 view with every quantised weight W (INT8 codes
 * plus W_scale) replaced by compressed-tensors' pack-quantized tensors
 * W_packed (I32), W_shape (I64) and W_scale, config.json's
 * quantization_config rewritten for n bits, and the shard index renamed to
 * match; every other file and tensor is the INT8 view's.
 *
 * The packed codes and the scales are faces of the weight's QUANT stream
 * (lowface.c), so reading them decodes only the INT8 codes of the chunks a
 * read touches.  A weight whose chunks do not hold whole rows (or, for
 * INT4, whole groups of 128) stays in its source dtype and is added to
 * `ignore`, as the INT8 view does with the weights it leaves in float.
 */
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "lowview.h"

int lv_add(lv *b, uint32_t stream, uint32_t face, uint64_t off, uint64_t len, qs_error *err)
{
	if (!len)
		return 0;
	if (qs_grow((void **)&b->x, &b->cap, b->nx + 1, sizeof(qs_extent)))
		return qs_fail(err, ENOMEM, "out of memory");
	b->x[b->nx++] = (qs_extent){ 0, len, stream, face, off };
	return 0;
}

int lv_copy_range(lv *b, const qs_vfile *f, uint64_t off, uint64_t len, qs_error *err)
{
	const qs_index *ix = b->c->ix;
	for (uint64_t i = len ? qs_extent_at(ix, f, off) : 0; len && i < f->first_extent + f->n_extents; i++) {
		const qs_extent *e = &ix->extents[i];
		if (off < e->file_off || off >= e->file_off + e->len)
			break;
		uint64_t in = off - e->file_off, take = e->len - in < len ? e->len - in : len;
		if (lv_add(b, e->stream, e->face, e->stream_off + in, take, err))
			return -1;
		off += take;
		len -= take;
	}
	return len ? qs_fail(err, EIO, "%s: damaged index: int8 file '%s' does not cover what its header says",
			     b->c->path, f->path) : 0;
}

/* Reads of the INT8 view's generated files are bounded by the container's
 * own size (real ones are well under 1% of it), so a small container cannot
 * make open read and parse much. */
int lv_spend(lv *b, const char *path, uint64_t n, qs_error *err)
{
	if (n <= b->src->budget) {
		b->src->budget -= n;
		return 0;
	}
	return qs_fail(err, EFBIG, "%s: int8 file '%s' needs %llu bytes read at open, more than a %llu-byte "
		       "container justifies", b->c->path, path, (unsigned long long)n,
		       (unsigned long long)b->c->ix->container_bytes);
}

/* Parse INT8 file FI with READ, once for every view: the result, kept in
 * b->src, or its error again. */
static lv_srcfile *src_file(lv *b, size_t fi, int (*read)(lv *, size_t, lv_srcfile *), qs_error *err)
{
	lv_srcfile *s = &b->src->f[fi];
	if (!s->state)
		s->state = read(b, fi, s) ? -1 : 1;
	if (s->state > 0)
		return s;
	if (err)
		*err = s->err;
	return NULL;
}

static int read_header(lv *b, size_t fi, lv_srcfile *s)
{
	uint64_t hlen;
	if (qs_read_st_header(b->c, b->r, QS_VIEW_INT8, fi, &s->st, &hlen, &b->src->budget, &s->err))
		return -1;
	if (!lv_roles(b->c->ix, &b->c->ix->files[QS_VIEW_INT8][fi], &s->st, &s->role, &s->err))
		return 0;
	qs_st_free(&s->st);   /* failed: src_free frees only those read */
	return -1;
}

const qs_st_file *lv_src_header(lv *b, size_t fi, const int64_t **role, qs_error *err)
{
	lv_srcfile *s = src_file(b, fi, read_header, err);
	if (s)
		*role = s->role;
	return s ? &s->st : NULL;
}

/* The file's JSON, read through the INT8 view (within the budget). */
static int read_json(lv *b, size_t fi, lv_srcfile *s)
{
	const qs_vfile *f = &b->c->ix->files[QS_VIEW_INT8][fi];
	if (lv_spend(b, f->path, f->size, &s->err))
		return -1;
	char *t = malloc(f->size + 1);
	if (!t)
		return qs_fail(&s->err, ENOMEM, "out of memory");
	int rc = qs_read(b->r, QS_VIEW_INT8, fi, 0, t, f->size, &s->err) == (ssize_t)f->size ? 0 : -1;
	if (!rc)
		s->json = json_loadb(t, f->size, 0, NULL);
	free(t);
	return rc;
}

json_t *lv_src_json(lv *b, size_t fi, qs_error *err)
{
	lv_srcfile *s = src_file(b, fi, read_json, err);
	json_t *j = s && s->json ? json_deep_copy(s->json) : NULL;
	if (s && s->json && !j)
		qs_fail(err, ENOMEM, "out of memory");
	return j;
}

static void src_free(lv_src *src)
{
	for (size_t i = 0; i < src->n; i++) {
		if (src->f[i].state > 0)
			qs_st_free(&src->f[i].st);
		free(src->f[i].role);
		json_decref(src->f[i].json);
	}
	free(src->f);
}

ssize_t lv_finish(lv *b, const qs_vfile *from, int own_hash, qs_error *err)
{
	/* from may point into files[INT8], which adding to view n leaves alone */
	ssize_t i = qs_index_add_gen_file(b->c->ix, (int)b->n, from->path, (uint8_t *)b->mem.p, b->mem.len, b->x,
					  b->nx, own_hash ? from->sha256 : NULL, err);
	memset(&b->mem, 0, sizeof(b->mem));
	b->nx = 0;
	return i;
}

static int share(lv *b, size_t fi, qs_error *err)
{
	const qs_vfile *f = &b->c->ix->files[QS_VIEW_INT8][fi];
	if (lv_copy_range(b, f, 0, f->size, err))
		return -1;
	return lv_finish(b, f, !f->derived, err) < 0 ? -1 : 0;
}

/* The files of view N built so far (their extents and streams stay in the
 * index, unused, until it is freed). */
static void drop_view(qs_index *ix, unsigned n)
{
	for (size_t i = 0; i < ix->n_files[n]; i++)
		free(ix->files[n][i].path);
	free(ix->files[n]);
	ix->files[n] = NULL;
	ix->n_files[n] = ix->cap_files[n] = 0;
}

static int build_view(lv *b, qs_error *err)
{
	qs_index *ix = b->c->ix;
	size_t n8 = ix->n_files[QS_VIEW_INT8];
	int rc = 0;
	/* weight files first: the shard index and config need what they did */
	for (size_t i = 0; i < n8 && !rc; i++)
		if (!ix->files[QS_VIEW_INT8][i].derived && qs_ends_with(ix->files[QS_VIEW_INT8][i].path, ".safetensors"))
			rc = lv_safetensors(b, i, err);
	for (size_t i = 0; i < n8 && !rc; i++) {
		if (ix->files[QS_VIEW_INT8][i].derived || qs_ends_with(ix->files[QS_VIEW_INT8][i].path, ".safetensors"))
			continue;
		rc = lv_json(b, i, err);
		rc = rc > 0 ? 0 : rc ? rc : share(b, i, err);
	}
	return rc;
}

int qs_low_views_init(qs_container *c, unsigned flags, qs_error *err)
{
	qs_index *ix = c->ix;
	for (unsigned n = 2; n <= 7; n++)
		if (flags & QS_OPEN_INT(n))
			ix->low_views |= 1u << n;
	if (!ix->low_views)
		return 0;
	qs_index_assign_keys(ix);
	qs_reader *r = qs_reader_new(c, err);
	lv_src src = { calloc(ix->n_files[QS_VIEW_INT8] + 1, sizeof(lv_srcfile)), ix->n_files[QS_VIEW_INT8],
		       QS_OPEN_READ_BUDGET(ix) };
	int rc = !r ? -1 : !src.f ? qs_fail(err, ENOMEM, "%s: out of memory", c->path) : 0;
	for (unsigned n = 2; n <= 7 && !rc; n++) {
		if (!(ix->low_views >> n & 1))
			continue;
		lv b = { c, r, n, &src, json_object(), json_object(), json_object(), NULL, 0, 0, { 0 } };
		qs_error e = { 0 };
		rc = b.packed && b.floated && b.data_bytes ? build_view(&b, &e) : qs_fail(&e, ENOMEM, "out of memory");
		free(b.x);
		free(b.mem.p);
		json_decref(b.packed);
		json_decref(b.floated);
		json_decref(b.data_bytes);
		if (!rc) {
			c->dir[n] = qs_view_names[n];   /* a lower view's directory is its name */
		} else if (e.code != ENOMEM) {
			/* a view the INT8 view cannot give is absent, not an open error:
			 * the stored views are still served (the daemon logs why) */
			drop_view(ix, n);
			rc = (c->low_why[n] = strdup(e.msg)) ? 0 : qs_fail(err, ENOMEM, "%s: out of memory", c->path);
		} else if (err) {
			*err = e;
		}
	}
	if (src.f)
		src_free(&src);
	qs_reader_free(r);
	return rc;
}

const char *qs_view_missing(const qs_container *c, qs_view v)
{
	return (unsigned)v < QS_N_VIEWS ? c->low_why[v] : NULL;
}

void qs_low_views_free(qs_container *c)
{
	for (int v = 0; v < QS_N_VIEWS; v++)
		free(c->low_why[v]);
	struct qs_gmax *_Atomic *g = atomic_load(&c->gmax);
	for (uint64_t k = 0; g && k < c->ix->n_chunks; k++)
		free(g[k]);
	free(g);
	c->gmax = NULL;
}
