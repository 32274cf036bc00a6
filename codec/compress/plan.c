/* plan.c - scanning the source and laying out streams and both views. */
#include "plan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/floatfmt.h"

#define PREAD_BLOCK (4u << 20)

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *p = realloc(*arr, n * elem);
	if (!p)
		return -1;
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*arr = p;
	*cap = n;
	return 0;
}


/* ---- 1. the source files ------------------------------------------------ */

static int cmp_rel(const void *a, const void *b)
{
	return strcmp(((const qs_srcfile *)a)->rel, ((const qs_srcfile *)b)->rel);
}

static int add_file(qs_plan *p, size_t *cap, const char *rel, const char *abs, uint64_t size, qs_error *err)
{
	if (grow((void **)&p->files, cap, p->n_files + 1, sizeof(qs_srcfile)))
		return qs_fail(err, ENOMEM, "out of memory");
	qs_srcfile *f = &p->files[p->n_files++];
	f->rel = strdup(rel);
	f->abs = strdup(abs);
	f->size = size;
	f->fd = -1;
	if (!f->rel || !f->abs)
		return qs_fail(err, ENOMEM, "out of memory");
	if (!qs_path_ok(rel))
		return qs_fail(err, EINVAL, "%s: file name not supported (control characters or too long)", abs);
	return 0;
}

static int walk(qs_plan *p, size_t *cap, const char *abs, const char *rel, int depth, qs_error *err)
{
	if (depth > 16)
		return qs_fail(err, ELOOP, "%s: directories nested too deep (symlink loop?)", abs);
	DIR *d = opendir(abs);
	if (!d)
		return qs_fail(err, errno, "%s: %s", abs, strerror(errno));
	struct dirent *de;
	int rc = 0;
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *a = NULL, *r = NULL;
		struct stat st;
		if (asprintf(&a, "%s/%s", abs, de->d_name) < 0
		    || asprintf(&r, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
			rc = qs_fail(err, ENOMEM, "out of memory");
		} else if (stat(a, &st)) {
			rc = qs_fail(err, errno, "%s: %s", a, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk(p, cap, a, r, depth + 1, err);
		} else if (S_ISREG(st.st_mode)) {
			rc = add_file(p, cap, r, a, (uint64_t)st.st_size, err);
		} else {
			rc = qs_fail(err, EINVAL, "%s: not a regular file or directory", a);
		}
		free(a);
		free(r);
	}
	closedir(d);
	return rc;
}

static int list_sources(qs_plan *p, const char *src, qs_error *err)
{
	struct stat st;
	size_t cap = 0;
	if (stat(src, &st))
		return qs_fail(err, errno, "%s: %s", src, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		if (walk(p, &cap, src, "", 0, err))
			return -1;
	} else if (S_ISREG(st.st_mode)) {
		const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
		if (!ends_with(base, ".safetensors"))
			return qs_fail(err, EINVAL, "%s: expected a model directory or a .safetensors file", src);
		if (add_file(p, &cap, base, src, (uint64_t)st.st_size, err))
			return -1;
	} else {
		return qs_fail(err, EINVAL, "%s: not a directory or regular file", src);
	}
	if (!p->n_files)
		return qs_fail(err, EINVAL, "%s: empty directory, nothing to pack", src);
	qsort(p->files, p->n_files, sizeof(qs_srcfile), cmp_rel);
	for (size_t i = 0; i < p->n_files; i++) {
		qs_srcfile *f = &p->files[i];
		p->source_bytes += f->size;
		f->is_st = ends_with(f->rel, ".safetensors");
		f->fd = open(f->abs, O_RDONLY | O_CLOEXEC);
		if (f->fd < 0)
			return qs_fail(err, errno, "%s: %s", f->abs, strerror(errno));
	}
	return 0;
}

/* ---- 2. safetensors headers, names, the shard index -------------------- */

static int parse_headers(qs_plan *p, qs_error *err)
{
	for (size_t i = 0; i < p->n_files; i++) {
		qs_srcfile *f = &p->files[i];
		uint8_t first[8];
		uint64_t n;
		if (!f->is_st)
			continue;
		if (f->size >= 8 && qs_pread_full(f->fd, first, 8, 0))
			return qs_fail(err, EIO, "%s: read error", f->abs);
		if (qs_st_header_len(f->abs, first, f->size, &n, err))
			return -1;
		uint8_t *js = malloc(n);
		if (!js)
			return qs_fail(err, ENOMEM, "%s: out of memory for a %llu-byte header", f->abs, (unsigned long long)n);
		int rc = qs_pread_full(f->fd, js, n, 8) ? qs_fail(err, EIO, "%s: read error", f->abs)
			: qs_st_parse(f->abs, js, n, f->size, &f->st, err);
		free(js);
		if (rc)
			return -1;
	}
	return 0;
}

typedef struct { const char *name; const char *file; } named;
static int cmp_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

static int check_names(qs_plan *p, qs_error *err)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; i < p->n_files; i++)
		n += p->files[i].st.n;
	named *all = malloc((n ? n : 1) * sizeof(named));
	if (!all)
		return qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_files; i++)
		for (size_t j = 0; j < p->files[i].st.n; j++)
			all[k++] = (named){ p->files[i].st.t[j].name, p->files[i].abs };
	qsort(all, n, sizeof(named), cmp_named);
	for (size_t i = 0; i + 1 < n; i++)
		if (!strcmp(all[i].name, all[i + 1].name)) {
			int rc = qs_fail(err, EINVAL, "tensor '%s' appears in both %s and %s", all[i].name,
					 all[i].file, all[i + 1].file);
			free(all);
			return rc;
		}
	free(all);
	return 0;
}

static qs_srcfile *find_file(qs_plan *p, const char *rel)
{
	qs_srcfile key = { .rel = (char *)rel };
	return bsearch(&key, p->files, p->n_files, sizeof(qs_srcfile), cmp_rel);   /* files are sorted */
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is NAME a tensor of F?  Binary search over F's names, sorted once. */
static int st_has(qs_srcfile *f, const char *name)
{
	if (!f->names && f->st.n) {
		f->names = malloc(f->st.n * sizeof(char *));
		if (!f->names)
			return 0;
		for (size_t i = 0; i < f->st.n; i++)
			f->names[i] = f->st.t[i].name;
		qsort(f->names, f->st.n, sizeof(char *), cmp_name_ptr);
	}
	return f->st.n && bsearch(&name, f->names, f->st.n, sizeof(char *), cmp_name_ptr) != NULL;
}

static json_t *load_json_file(const qs_srcfile *f, qs_error *err)
{
	char *buf = malloc(f->size + 1);
	json_error_t je;
	if (!buf) {
		qs_fail(err, ENOMEM, "%s: out of memory", f->abs);
		return NULL;
	}
	if (qs_pread_full(f->fd, buf, f->size, 0)) {
		free(buf);
		qs_fail(err, EIO, "%s: read error", f->abs);
		return NULL;
	}
	json_t *j = json_loadb(buf, f->size, 0, &je);
	free(buf);
	if (!j)
		qs_fail(err, EINVAL, "%s: not valid JSON: %s (line %d)", f->abs, je.text, je.line);
	return j;
}

/* The directory part of a relative path ("" for the top level). */
static char *dir_of(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return strndup(rel, s ? (size_t)(s - rel + 1) : 0);
}

static int check_index(qs_plan *p, qs_srcfile *f, qs_error *err)
{
	json_t *j = load_json_file(f, err), *wm;
	if (!j)
		return -1;
	int rc = 0;
	const char *name;
	json_t *v;
	if (!json_is_object(j) || !json_is_object(wm = json_object_get(j, "weight_map"))) {
		json_decref(j);
		return qs_fail(err, EINVAL, "%s: shard index has no weight_map object", f->abs);
	}
	char *dir = dir_of(f->rel);
	json_object_foreach(wm, name, v) {
		const char *shard = json_is_string(v) ? json_string_value(v) : NULL;
		if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, "..") || !strcmp(shard, ".")) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s' maps to an invalid shard name", f->abs, name);
			break;
		}
		char *rel = NULL;
		if (asprintf(&rel, "%s%s", dir, shard) < 0) {
			rc = qs_fail(err, ENOMEM, "out of memory");
			break;
		}
		qs_srcfile *s = find_file(p, rel);
		free(rel);
		if (!s || !s->is_st) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s' maps to shard '%s', which is missing", f->abs, name, shard);
			break;
		}
		if (!st_has(s, name)) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s' maps to shard '%s', which does not contain it",
				     f->abs, name, shard);
			break;
		}
	}
	free(dir);
	json_decref(j);
	return rc;
}

/* ---- 3. quantisation decisions ----------------------------------------- */

static int is_embedding(const char *name)
{
	return strstr(name, "embed") || strstr(name, "wte.") || strstr(name, "wpe.")
		|| !strncmp(name, "wte", 3) || !strncmp(name, "wpe", 3);
}

/* Returns NULL if T is a quantisation candidate, else why not. */
static const char *why_not(qs_srcfile *f, const qs_st_tensor *t)
{
	if (!qs_fmt_from_dtype(t->dtype))
		return t->dsize ? "not a float dtype" : "unknown dtype: stored losslessly";
	if (t->ndim != 2)
		return "not a 2-D weight";
	if (!ends_with(t->name, ".weight"))
		return "not named *.weight";
	if (is_embedding(t->name))
		return "embedding";
	if (!t->shape[0] || !t->shape[1])
		return "empty";
	char *scale = NULL;
	int clash = asprintf(&scale, "%s_scale", t->name) < 0 || st_has(f, scale);
	free(scale);
	if (clash)
		return "a tensor named *.weight_scale already exists";
	if (!strcmp(t->name, "lm_head.weight") || ends_with(t->name, ".lm_head.weight"))
		return "lm_head: kept in float (listed in quantization_config.ignore)";
	return NULL;
}

/* Pass 1 over a candidate: per-row absmax (as a magnitude pattern: for finite
 * floats the integer order is the numeric order) and finiteness. */
static int row_scales(qs_plan *p, const qs_srcfile *f, const qs_st_tensor *t, const qs_fmtinfo *fi,
		      uint32_t *scales, int *finite, qs_error *err)
{
	uint64_t rows = t->shape[0], cols = t->shape[1], row = 0, col = 0;
	uint64_t total = t->end - t->begin, at = 0;
	uint32_t rmax = 0, worst = 0;
	uint8_t *buf = malloc(PREAD_BLOCK);
	if (!buf)
		return qs_fail(err, ENOMEM, "out of memory");
	(void)p;
	while (at < total) {
		size_t n = total - at < PREAD_BLOCK ? (size_t)(total - at) : PREAD_BLOCK;
		if (qs_pread_full(f->fd, buf, n, f->st.data_start + t->begin + at)) {
			free(buf);
			return qs_fail(err, EIO, "%s: read error in tensor '%s'", f->abs, t->name);
		}
		size_t ne = n / fi->esize, i = 0;
		while (i < ne) {
			size_t m = ne - i < cols - col ? ne - i : (size_t)(cols - col);
			if (fi->esize == 2) {
				for (size_t j = 0; j < m; j++) {
					uint32_t g = rd16(buf + 2 * (i + j)) & 0x7fffu;
					rmax = g > rmax ? g : rmax;
				}
			} else {
				for (size_t j = 0; j < m; j++) {
					uint32_t g = rd32(buf + 4 * (i + j)) & 0x7fffffffu;
					rmax = g > rmax ? g : rmax;
				}
			}
			i += m;
			col += m;
			if (col == cols) {
				worst = rmax > worst ? rmax : worst;
				scales[row++] = qs_scale_for(fi, qs_to_f32(fi, rmax));
				rmax = 0;
				col = 0;
			}
		}
		at += n;
	}
	free(buf);
	*finite = worst <= fi->magmax;
	return row == rows ? 0 : qs_fail(err, EIO, "%s: tensor '%s' changed while packing", f->abs, t->name);
}

/* ---- 4. streams, tensors, extents --------------------------------------- */

static int64_t add_stream(qs_plan *p, const char *name, int kind, int fmt, uint32_t esize, uint64_t elems,
			  uint64_t cols, qs_stream_src src, qs_error *err)
{
	size_t cap = p->cap_streams;
	if (grow((void **)&p->ix.streams, &cap, p->ix.n_streams + 1, sizeof(qs_stream))
	    || grow((void **)&p->src, &p->cap_streams, p->ix.n_streams + 1, sizeof(qs_stream_src)))
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

static int add_extent(qs_plan *p, qs_vfile *f, int64_t stream, int face, uint64_t len, qs_error *err)
{
	if (!len)
		return 0;
	if (grow((void **)&p->ix.extents, &p->cap_extents, p->ix.n_extents + 1, sizeof(qs_extent)))
		return qs_fail(err, ENOMEM, "out of memory");
	if (!f->n_extents)
		f->first_extent = p->ix.n_extents;
	p->ix.extents[p->ix.n_extents++] = (qs_extent){ f->size, len, (uint32_t)stream, (uint32_t)face, 0 };
	f->n_extents++;
	f->size += len;
	return 0;
}

static qs_vfile *add_vfile(qs_plan *p, int view, const char *path, qs_error *err)
{
	size_t cap = p->ix.n_files[view];
	if (grow((void **)&p->ix.files[view], &cap, p->ix.n_files[view] + 1, sizeof(qs_vfile))
	    || !(p->ix.files[view][p->ix.n_files[view]].path = strdup(path))) {
		qs_fail(err, ENOMEM, "out of memory");
		return NULL;
	}
	return &p->ix.files[view][p->ix.n_files[view]++];
}

static int add_tensor(qs_plan *p, const qs_srcfile *f, const qs_st_tensor *t, int64_t stream, int quantized,
		      const char *reason, qs_error *err)
{
	if (grow((void **)&p->ix.tensors, &p->cap_tensors, p->ix.n_tensors + 1, sizeof(qs_tensor)))
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

static int64_t add_blob(qs_plan *p, const char *name, uint8_t *mem, size_t file, uint64_t off, uint64_t len,
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
	qs_vfile *vf = add_vfile(p, QS_VIEW_HIGH, f->rel, err);
	if (!vf)
		return -1;
	int64_t hs = add_blob(p, f->rel, NULL, fi, 0, f->st.data_start, hf, 12, err);
	if (hs < 0 || add_extent(p, &p->ix.files[QS_VIEW_HIGH][hf], hs, QS_FACE_HIGH, f->st.data_start, err))
		return -1;
	for (size_t j = 0; j < f->st.n; j++) {
		const qs_st_tensor *t = &f->st.t[j];
		uint64_t nbytes = t->end - t->begin;
		int finite = 1, fmt = qs_fmt_from_dtype(t->dtype);
		const char *why = why_not(f, t);
		const qs_fmtinfo *fi2 = qs_fmt_info(fmt);
		uint32_t *scales = NULL;
		sstream[j] = -1;
		tstream[j] = -1;
		if (!why) {
			scales = malloc(t->shape[0] * sizeof(uint32_t));
			if (!scales || grow((void **)&p->scale_bufs, &(size_t){ p->n_scale_bufs }, p->n_scale_bufs + 1,
					    sizeof(uint32_t *))) {
				free(scales);
				return qs_fail(err, ENOMEM, "out of memory");
			}
			p->scale_bufs[p->n_scale_bufs++] = scales;
			if (row_scales(p, f, t, fi2, scales, &finite, err))
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
		    || add_extent(p, &p->ix.files[QS_VIEW_HIGH][hf], tstream[j], QS_FACE_HIGH, nbytes, err))
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

/* ---- 5. the INT8 view --------------------------------------------------- */

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
	qs_vfile *vf = hdr ? add_vfile(p, QS_VIEW_INT8, f->rel, err) : NULL;
	size_t vi = p->ix.n_files[QS_VIEW_INT8] - 1;
	int64_t hs = vf ? add_blob(p, f->rel, hdr, 0, 0, hlen, -1, 12, err) : -1;
	if (!hdr)
		qs_fail(err, ENOMEM, "out of memory");
	else if (hs < 0)
		free(hdr);
	else if (!add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], hs, QS_FACE_HIGH, hlen, err)) {
		rc = 0;
		for (size_t i = 0; i < n && !rc; i++)
			rc = add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], e[i].stream, e[i].face, e[i].len, err);
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
		    && qs_fmt_from_dtype(t->dtype) && !is_embedding(t->name))
			json_array_append_new(ignore, json_stringn(t->name, l - 7));
	}
	if (!lm_head && json_is_true(json_object_get(config, "tie_word_embeddings")))
		json_array_append_new(ignore, json_string("lm_head"));
	/* the format is given per group too: loaders infer a group's format
	 * from its scheme when it is missing, and infer pack-quantized */
	return json_pack("{s:s, s:s, s:s, s:{s:{s:[s], s:{s:i, s:s, s:b, s:s, s:b}, s:n, s:n, s:s}}, s:o}",
			 "quant_method", "compressed-tensors", "format", "naive-quantized",
			 "quantization_status", "compressed", "config_groups", "group_0", "targets", "Linear",
			 "weights", "num_bits", 8, "type", "int", "symmetric", 1, "strategy", "channel", "dynamic", 0,
			 "input_activations", "output_activations", "format", "naive-quantized", "ignore", ignore);
}

static int add_json_blob(qs_plan *p, const char *rel, json_t *j, size_t flags, qs_error *err)
{
	char *s = json_dumps(j, flags);
	if (!s)
		return qs_fail(err, ENOMEM, "out of memory");
	size_t len = strlen(s);
	s[len] = '\n';   /* json_dumps NUL-terminates; a trailing newline as editors write */
	qs_vfile *vf = add_vfile(p, QS_VIEW_INT8, rel, err);
	size_t vi = p->ix.n_files[QS_VIEW_INT8] - 1;
	int64_t bs = vf ? add_blob(p, rel, (uint8_t *)s, 0, 0, len + 1, -1, 12, err) : -1;
	if (bs < 0) {
		free(s);
		return -1;
	}
	return add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], bs, QS_FACE_HIGH, len + 1, err);
}

/* The shard index of the INT8 view: every entry kept, each quantised
 * weight followed by its weight_scale in the same shard, total_size of the
 * INT8 shards. */
static void rewrite_index(qs_plan *p, const qs_srcfile *f, json_t *j, json_t *quantized, const uint64_t *i8data)
{
	json_t *wm = json_object_get(j, "weight_map"), *nw = json_object(), *v;
	const char *name;
	uint64_t total = 0;
	char *dir = dir_of(f->rel);
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
			if (asprintf(&rel, "%s%s", dir, shard) >= 0 && (sf = find_file(p, rel)))
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
	if (!add_vfile(p, QS_VIEW_INT8, p->files[fi].rel, err))
		return -1;
	size_t vi = p->ix.n_files[QS_VIEW_INT8] - 1;
	for (uint64_t k = 0; k < hf->n_extents; k++) {
		qs_extent x = p->ix.extents[hf->first_extent + k];
		if (add_extent(p, &p->ix.files[QS_VIEW_INT8][vi], x.stream, (int)x.face, x.len, err))
			return -1;
	}
	return 0;
}

/* ---- putting it together ------------------------------------------------ */

int qs_plan_build(qs_plan *p, const char *src, size_t chunk_bytes, qs_error *err)
{
	memset(p, 0, sizeof(*p));
	p->chunk_bytes = chunk_bytes;
	if (list_sources(p, src, err) || parse_headers(p, err) || check_names(p, err))
		return -1;
	for (size_t i = 0; i < p->n_files; i++)
		if (ends_with(p->files[i].rel, ".safetensors.index.json") && check_index(p, &p->files[i], err))
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
			qs_vfile *vf = add_vfile(p, QS_VIEW_HIGH, f->rel, err);
			int64_t bs = vf ? add_blob(p, f->rel, NULL, i, 0, f->size, hf, 12, err) : -1;
			rc = bs < 0 ? -1 : add_extent(p, &p->ix.files[QS_VIEW_HIGH][hf], bs, QS_FACE_HIGH, f->size, err);
		}
	}
	/* INT8 view: generated safetensors first (the index needs their sizes),
	 * then config.json and the shard index rewritten, the rest shared */
	uint64_t *i8data = calloc(p->n_files + 1, sizeof(uint64_t));
	json_t *quantized = json_object();
	if (!rc && !i8data)
		rc = qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->ix.n_tensors && !rc; i++)
		if (p->ix.tensors[i].quantized)
			json_object_set_new(quantized, p->ix.tensors[i].name, json_true());
	for (size_t i = 0; i < p->n_files && !rc; i++)
		if (p->files[i].is_st)
			rc = plan_i8_st(p, i, ts[i], ss[i], t0[i], &i8data[i], err);
	for (size_t i = 0; i < p->n_files && !rc; i++) {
		qs_srcfile *f = &p->files[i];
		json_t *j = NULL;
		if (f->is_st)
			continue;
		if (json_object_size(quantized) && !strcmp(f->rel, "config.json") && (j = load_json_file(f, NULL))
		    && json_is_object(j)) {
			json_object_set_new(j, "quantization_config", quantization_config(p, j));
			rc = add_json_blob(p, f->rel, j, JSON_INDENT(2), err);
		} else if (ends_with(f->rel, ".safetensors.index.json") && (j = load_json_file(f, err))) {
			rewrite_index(p, f, j, quantized, i8data);
			rc = add_json_blob(p, f->rel, j, JSON_INDENT(2) | JSON_SORT_KEYS, err);
		} else {
			rc = share_file(p, i, err);
		}
		json_decref(j);
	}
	json_decref(quantized);
	free(i8data);
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
	qs_index_free(&p->ix);
}
