/* plan.c - the layout: streams (and their chunking), tensors, the high
 * view's files and extents, and qs_plan_build, which runs the planner's
 * steps in order (plan_int.h). */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int64_t add_stream(qs_plan *p, const char *name, int kind, int fmt, uint32_t esize, uint64_t elems,
			  uint64_t cols, qs_stream_src src, qs_error *err)
{
	size_t cap = p->cap_streams;
	if (qs_grow((void **)&p->ix.streams, &cap, p->ix.n_streams + 1, sizeof(qs_stream))
	    || qs_grow((void **)&p->src, &p->cap_streams, p->ix.n_streams + 1, sizeof(qs_stream_src)))
		return qs_fail(err, ENOMEM, "out of memory");
	qs_stream *s = &p->ix.streams[p->ix.n_streams];
	s->name = strdup(name);
	if (!s->name)
		return qs_fail(err, ENOMEM, "out of memory");
	s->kind = kind;
	s->fmt = fmt;
	s->esize = esize;
	s->elems = elems;
	s->cols = cols;
	s->scale_stream = -1;
	uint64_t per = p->chunk_bytes / esize;
	if (kind == QS_STREAM_QUANT && cols <= per)
		per = per / cols * cols;   /* whole rows per chunk when they fit */
	s->chunk_elems = per ? per : 1;
	s->n_chunks = elems ? (elems + s->chunk_elems - 1) / s->chunk_elems : 0;
	s->first_chunk = p->ix.n_chunks;
	p->ix.n_chunks += s->n_chunks;
	p->src[p->ix.n_streams] = src;
	return (int64_t)p->ix.n_streams++;
}

int qs_plan_add_extent(qs_plan *p, qs_vfile *f, int64_t stream, int face, uint64_t len, qs_error *err)
{
	if (!len)
		return 0;
	if (qs_grow((void **)&p->ix.extents, &p->cap_extents, p->ix.n_extents + 1, sizeof(qs_extent)))
		return qs_fail(err, ENOMEM, "out of memory");
	if (!f->n_extents)
		f->first_extent = p->ix.n_extents;
	p->ix.extents[p->ix.n_extents++] = (qs_extent){ f->size, len, (uint32_t)stream, (uint32_t)face, 0 };
	f->n_extents++;
	f->size += len;
	return 0;
}

qs_vfile *qs_plan_add_vfile(qs_plan *p, int view, const char *path, qs_error *err)
{
	size_t cap = p->ix.n_files[view];
	if (qs_grow((void **)&p->ix.files[view], &cap, p->ix.n_files[view] + 1, sizeof(qs_vfile))
	    || !(p->ix.files[view][p->ix.n_files[view]].path = strdup(path))) {
		qs_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	return &p->ix.files[view][p->ix.n_files[view]++];
}

static int add_tensor(qs_plan *p, const qs_srcfile *f, const qs_st_tensor *t, int64_t stream, int quantized,
		      const char *reason, qs_error *err)
{
	if (qs_grow((void **)&p->ix.tensors, &p->cap_tensors, p->ix.n_tensors + 1, sizeof(qs_tensor)))
		return qs_fail(err, ENOMEM, "out of memory");
	qs_tensor *x = &p->ix.tensors[p->ix.n_tensors++];
	x->name = strdup(t->name);
	x->file = strdup(f->rel);
	x->dtype = strdup(t->dtype);
	x->reason = strdup(reason);
	x->ndim = t->ndim;
	memcpy(x->shape, t->shape, sizeof(x->shape));
	x->nbytes = t->end - t->begin;
	x->stream = stream;
	x->quantized = quantized;
	x->floor_bytes = (double)x->nbytes;
	if (!x->name || !x->file || !x->dtype || !x->reason)
		return qs_fail(err, ENOMEM, "out of memory");
	return 0;
}

int64_t qs_plan_add_blob(qs_plan *p, const char *name, uint8_t *mem, size_t file, uint64_t off, uint64_t len,
			int64_t hash_file, int zlevel, qs_error *err)
{
	qs_stream_src src = { mem ? SRC_MEM : SRC_FILE, file, off, mem, -1, hash_file, NULL, zlevel };
	return add_stream(p, name, QS_STREAM_BLOB, QS_FMT_NONE, 1, len, 0, src, err);
}

/* Streams and high view extents of one safetensors file.  tstream[j] is set
 * to the stream of tensor j (-1 if empty), sstream[j] to its scale stream
 * (-1 if not quantised). */
static int plan_st_file(qs_plan *p, size_t fi, int64_t *tstream, int64_t *sstream, qs_error *err)
{
	qs_srcfile *f = &p->files[fi];
	int64_t hf = (int64_t)p->ix.n_files[QS_VIEW_HIGH];
	qs_vfile *vf = qs_plan_add_vfile(p, QS_VIEW_HIGH, f->rel, err);
	if (!vf)
		return -1;
	int64_t hs = qs_plan_add_blob(p, f->rel, NULL, fi, 0, f->st.data_start, hf, 12, err);
	if (hs < 0 || qs_plan_add_extent(p, &p->ix.files[QS_VIEW_HIGH][hf], hs, QS_FACE_HIGH, f->st.data_start, err))
		return -1;
	for (size_t j = 0; j < f->st.n; j++) {
		const qs_st_tensor *t = &f->st.t[j];
		uint64_t nbytes = t->end - t->begin;
		int finite = 1, fmt = qs_fmt_from_dtype(t->dtype);
		const char *why = qs_quant_why_not(f, t);
		const qs_fmtinfo *fi2 = qs_fmt_info(fmt);
		uint32_t *scales = NULL;
		sstream[j] = -1;
		tstream[j] = -1;
		if (!why) {
			scales = malloc(t->shape[0] * sizeof(uint32_t));
			if (!scales || qs_grow((void **)&p->scale_bufs, &(size_t){ p->n_scale_bufs }, p->n_scale_bufs + 1,
					    sizeof(uint32_t *))) {
				free(scales);
				return qs_fail(err, ENOMEM, "out of memory");
			}
			p->scale_bufs[p->n_scale_bufs++] = scales;
			if (qs_quant_row_scales(f, t, fi2, scales, &finite, err))
				return -1;
			if (!finite)
				why = "contains NaN or Inf: stored losslessly, left in float";
		}
		qs_stream_src src = { SRC_FILE, fi, f->st.data_start + t->begin, NULL, (int64_t)p->ix.n_tensors, hf,
				      NULL, 3 };
		if (nbytes && !why) {
			src.scales = scales;
			tstream[j] = add_stream(p, t->name, QS_STREAM_QUANT, fmt, fi2->esize, nbytes / fi2->esize,
						t->shape[1], src, err);
		} else if (nbytes && fmt) {
			tstream[j] = add_stream(p, t->name, QS_STREAM_FLOAT, fmt, fi2->esize, nbytes / fi2->esize, 0, src, err);
		} else if (nbytes) {
			tstream[j] = add_stream(p, t->name, QS_STREAM_BLOB, QS_FMT_NONE, 1, nbytes, 0, src, err);
		}
		if (tstream[j] < 0 && nbytes)
			return -1;
		if (add_tensor(p, f, t, tstream[j], !why, why ? why : "Linear weight: INT8 per-channel", err)
		    || qs_plan_add_extent(p, &p->ix.files[QS_VIEW_HIGH][hf], tstream[j], QS_FACE_HIGH, nbytes, err))
			return -1;
		if (!why) {
			/* the scales, as the INT8 view's weight_scale tensor [rows, 1] */
			uint64_t rows = t->shape[0];
			uint8_t *mem = malloc(rows * fi2->esize);
			char *nm = NULL;
			if (!mem || asprintf(&nm, "%s_scale", t->name) < 0) {
				free(mem);
				return qs_fail(err, ENOMEM, "out of memory");
			}
			for (uint64_t r = 0; r < rows; r++)
				qs_store(fi2, mem + r * fi2->esize, scales[r]);
			qs_stream_src ss = { SRC_MEM, 0, 0, mem, -1, -1, NULL, 0 };
			sstream[j] = add_stream(p, nm, QS_STREAM_FLOAT, fmt, fi2->esize, rows, 0, ss, err);
			free(nm);
			if (sstream[j] < 0) {
				free(mem);
				return -1;
			}
			p->ix.streams[tstream[j]].scale_stream = sstream[j];
		}
	}
	return 0;
}

/* ---- putting it together ------------------------------------------------ */

int qs_plan_build(qs_plan *p, const char *src, size_t chunk_bytes, qs_error *err)
{
	memset(p, 0, sizeof(*p));
	p->chunk_bytes = chunk_bytes;
	if (qs_plan_scan(p, src, err) || qs_plan_check_sources(p, err))
		return -1;
	/* the source dtype: the float dtype holding the most bytes */
	uint64_t by[4] = { 0 };
	for (size_t i = 0; i < p->n_files; i++)
		for (size_t j = 0; j < p->files[i].st.n; j++)
			by[qs_fmt_from_dtype(p->files[i].st.t[j].dtype)] += p->files[i].st.t[j].end - p->files[i].st.t[j].begin;
	int best = QS_FMT_BF16;
	for (int k = QS_FMT_BF16; k <= QS_FMT_F32; k++)
		if (by[k] > by[best])
			best = k;
	p->ix.source_dtype = strdup(qs_fmt_dtype(best));

	/* high view: every file as it is */
	int64_t **ts = calloc(p->n_files, sizeof(int64_t *)), **ss = calloc(p->n_files, sizeof(int64_t *));
	size_t *t0 = calloc(p->n_files, sizeof(size_t));
	int rc = ts && ss && t0 ? 0 : qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_files && !rc; i++) {
		qs_srcfile *f = &p->files[i];
		t0[i] = p->ix.n_tensors;
		if (f->is_st) {
			ts[i] = calloc(f->st.n + 1, sizeof(int64_t));
			ss[i] = calloc(f->st.n + 1, sizeof(int64_t));
			rc = ts[i] && ss[i] ? plan_st_file(p, i, ts[i], ss[i], err) : qs_fail(err, ENOMEM, "out of memory");
		} else {
			int64_t hf = (int64_t)p->ix.n_files[QS_VIEW_HIGH];
			qs_vfile *vf = qs_plan_add_vfile(p, QS_VIEW_HIGH, f->rel, err);
			int64_t bs = vf ? qs_plan_add_blob(p, f->rel, NULL, i, 0, f->size, hf, 12, err) : -1;
			rc = bs < 0 ? -1 : qs_plan_add_extent(p, &p->ix.files[QS_VIEW_HIGH][hf], bs, QS_FACE_HIGH, f->size, err);
		}
	}
	if (!rc)
		rc = qs_plan_int8_view(p, ts, ss, t0, err);
	for (size_t i = 0; i < p->n_files; i++) {
		free(ts ? ts[i] : NULL);
		free(ss ? ss[i] : NULL);
	}
	free(ts);
	free(ss);
	free(t0);
	return rc;
}

void qs_plan_free(qs_plan *p)
{
	for (size_t i = 0; i < p->n_files; i++) {
		qs_srcfile *f = &p->files[i];
		if (f->fd >= 0)
			close(f->fd);
		qs_st_free(&f->st);
		free(f->names);
		free(f->rel);
		free(f->abs);
	}
	free(p->files);
	for (size_t i = 0; i < p->ix.n_streams && p->src; i++)
		free(p->src[i].mem);
	free(p->src);
	for (size_t i = 0; i < p->n_scale_bufs; i++)
		free(p->scale_bufs[i]);
	free(p->scale_bufs);
	free(p->root);
	qs_index_free(&p->ix);
}
