/*
 * test_lowview.c - the lower views (FORMAT.md section 7) against a reference
 * written here from the format's text: every packed code and scale of every
 * width from the INT8 view's codes and scales, the weights a view must leave
 * in float, config.json and the shard index, keys, reading a scale before
 * its codes, damage, and the option lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>

#include "qstore.h"
#include "qstore_chunk.h"
#include "testutil.h"
#include "../tools/halfcast.h"
#include "../../codec/common/floatfmt.h"
#include "../../codec/common/safetensors.h"
#include "../../codec/decompress/decode.h"

#define CHUNK (16u << 10)

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
	return rng;
}

/* Heavy-tailed rows with a few zero runs (groups whose maximum is 0). */
static uint8_t *weights(const char *dtype, uint64_t rows, uint64_t cols)
{
	const qs_fmtinfo *f = qs_fmt_info(qs_fmt_from_dtype(dtype));
	uint8_t *d = calloc(rows * cols, f->esize);
	for (uint64_t r = 0; r < rows; r++)
		for (uint64_t c = 0; c < cols; c++) {
			double u = ((double)(rnd() >> 11) + 1) / 9007199254740993.0;
			float v = (float)((rnd() & 1 ? 1 : -1) * 0.01 * (1 + r % 5) * pow(u, -0.3) * (u - 0.5));
			if (r == 3 || (r == 5 && c < 128))
				v = 0;
			uint32_t x;
			memcpy(&x, &v, 4);
			if (f->esize == 2)
				x = f->fmt == QS_FMT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
			qs_store(f, d + (r * cols + c) * f->esize, x);
		}
	return d;
}

typedef struct wdef { const char *name, *dtype; uint64_t rows, cols; } wdef;
static const wdef W[] = {
	{ "model.layers.0.mlp.up_proj.weight", "BF16", 37, 256 },        /* two chunks, whole rows */
	{ "model.layers.0.self_attn.q_proj.weight", "F16", 19, 384 },
	{ "model.layers.0.self_attn.k_proj.weight", "F32", 9, 70 },      /* int4: 70 is not whole groups */
	{ "model.layers.0.mlp.down_proj.weight", "BF16", 3, 9000 },      /* rows longer than a chunk */
	{ "model.embed_tokens.weight", "BF16", 50, 16 },                 /* not quantised */
};
#define NW (sizeof(W) / sizeof(W[0]))

/* A model in one file or two shards with an index; returns its directory. */
static char *make_model(int sharded)
{
	char *dir = tt_tmpdir(), path[4200];
	static uint16_t norm[256];
	tt_tensor t[NW + 1];
	for (size_t i = 0; i < NW; i++) {
		int es = qs_dtype_size(W[i].dtype);
		t[i] = (tt_tensor){ W[i].name, W[i].dtype, 2, { W[i].rows, W[i].cols }, weights(W[i].dtype, W[i].rows, W[i].cols),
				    W[i].rows * W[i].cols * (uint64_t)es };
	}
	for (int i = 0; i < 256; i++)
		norm[i] = 0x3f80;
	t[NW] = (tt_tensor){ "model.norm.weight", "BF16", 1, { 256 }, norm, 512 };
	int n = (int)NW + 1;
	if (!sharded) {
		snprintf(path, sizeof(path), "%s/model.safetensors", dir);
		tt_write_st(path, t, n, NULL);
	} else {
		tt_write_two_shards(dir, t, n, 3);
	}
	snprintf(path, sizeof(path), "%s/config.json", dir);
	tt_write_file(path, "{\"model_type\": \"llama\"}\n", 24);
	for (size_t i = 0; i < NW; i++)
		free((void *)t[i].data);
	return dir;
}

/* The model's directory and container, removed and freed. */
static void drop(char *src, char *qst)
{
	tt_rmrf(src);
	unlink(qst);
	free(src);
	free(qst);
}

static char *pack_it(const char *src)
{
	char *out = NULL;
	if (asprintf(&out, "%s.qst", src) < 0)
		abort();
	qs_pack_options o = { .threads = 2, .chunk_bytes = CHUNK };
	qs_error e = { 0 };
	unlink(out);
	if (qs_pack(src, out, &o, NULL, &e))
		fail_msg("pack: %s", e.msg);
	return out;
}

/* The whole of file PATH of view V. */
static uint8_t *read_file(qs_container *c, qs_view v, const char *path, size_t *n)
{
	ssize_t i = qs_file_find(c, v, path);
	assert_true(i >= 0);
	qs_file_info fi;
	qs_file_get(c, v, (size_t)i, &fi);
	uint8_t *b = malloc(fi.size + 1);
	qs_reader *r = qs_reader_new(c, NULL);
	qs_error e = { 0 };
	assert_int_equal(qs_read(r, v, (size_t)i, 0, b, fi.size, &e), (ssize_t)fi.size);
	qs_reader_free(r);
	*n = fi.size;
	return b;
}

static void parse(const uint8_t *b, size_t n, qs_st_file *st)
{
	uint64_t hl;
	qs_error e = { 0 };
	assert_int_equal(qs_st_header_len("t", b, n, &hl, &e), 0);
	assert_int_equal(qs_st_parse("t", b + 8, hl, n, st, &e), 0);
}

static const qs_st_tensor *find(const qs_st_file *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->t[i].name, name))
			return &st->t[i];
	return NULL;
}

static const uint8_t *data(const uint8_t *b, const qs_st_file *st, const qs_st_tensor *t)
{
	return b + st->data_start + t->begin;
}

/* ---- the reference, from FORMAT.md 7.1 -------------------------------- */

/* round-half-even(a / b), b > 0, in integers */
static int rne_div(int a, int b)
{
	int s = a < 0 ? -1 : 1, x = a * s, q = x / b, r = x % b;
	if (2 * r > b || (2 * r == b && (q & 1)))
		q++;
	return s * q;
}

static int ref_code(int q, unsigned n, int m)
{
	if (n == 4)
		return m ? rne_div(7 * q, m) : 0;
	int c = rne_div(q, 1 << (8 - n)), hi = (1 << (n - 1)) - 1;
	return c > hi ? hi : c < -hi - 1 ? -hi - 1 : c;
}

static uint32_t to_fmt(const qs_fmtinfo *f, float v)
{
	uint32_t b;
	memcpy(&b, &v, 4);
	return f->fmt == QS_FMT_F32 ? b : f->fmt == QS_FMT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
}

static uint32_t ref_scale(const qs_fmtinfo *f, uint32_t s, unsigned n, int m)
{
	volatile float sf = qs_to_f32(f, s), prod = sf * (float)m;   /* binary32 steps, as the format says */
	return to_fmt(f, n == 4 ? prod / 7.0f : sf * (float)(1 << (8 - n)));
}

/* Code I of a packed row (offset removed). */
static int packed_code(const uint8_t *row, uint64_t i, unsigned n)
{
	uint64_t bit = i * n, v = 0;
	for (unsigned k = 0; k < n; k++, bit++)
		v |= (uint64_t)(row[bit / 8] >> (bit % 8) & 1) << k;
	return (int)v - (1 << (n - 1));
}

static int presented_packed(const wdef *w, unsigned n)
{
	int whole = w->cols <= CHUNK / (uint64_t)qs_dtype_size(w->dtype);
	return whole && (n != 4 || w->cols % 128 == 0);
}

/* One weight of view N against the INT8 view (codes, scale) and the high
 * view (the weights it leaves in float). */
static void check_weight(const wdef *w, unsigned n, const uint8_t *lb, const qs_st_file *lo, const uint8_t *ib,
			 const qs_st_file *i8, const uint8_t *hb, const qs_st_file *hi)
{
	char name[256];
	const qs_fmtinfo *f = qs_fmt_info(qs_fmt_from_dtype(w->dtype));
	const qs_st_tensor *q = find(i8, w->name), *qs;
	snprintf(name, sizeof(name), "%s_scale", w->name);
	qs = find(i8, name);
	assert_non_null(q);
	assert_non_null(qs);
	if (!presented_packed(w, n)) {
		const qs_st_tensor *t = find(lo, w->name), *h = find(hi, w->name);
		assert_non_null(t);
		assert_string_equal(t->dtype, w->dtype);
		assert_int_equal(t->end - t->begin, h->end - h->begin);
		assert_memory_equal(data(lb, lo, t), data(hb, hi, h), t->end - t->begin);
		assert_null(find(lo, name));
		return;
	}
	assert_null(find(lo, w->name));
	const qs_st_tensor *sc = find(lo, name);
	snprintf(name, sizeof(name), "%s_packed", w->name);
	const qs_st_tensor *pk = find(lo, name);
	snprintf(name, sizeof(name), "%s_shape", w->name);
	const qs_st_tensor *sh = find(lo, name);
	assert_non_null(pk);
	assert_non_null(sh);
	assert_non_null(sc);
	uint64_t words = (w->cols * n + 31) / 32, groups = n == 4 ? w->cols / 128 : 1;
	assert_string_equal(pk->dtype, "I32");
	assert_int_equal(pk->shape[0], w->rows);
	assert_int_equal(pk->shape[1], words);
	assert_string_equal(sh->dtype, "I64");
	assert_int_equal(rd64(data(lb, lo, sh)), w->rows);
	assert_int_equal(rd64(data(lb, lo, sh) + 8), w->cols);
	assert_string_equal(sc->dtype, w->dtype);
	assert_int_equal(sc->shape[0], w->rows);
	assert_int_equal(sc->shape[1], groups);
	const int8_t *codes = (const int8_t *)data(ib, i8, q);
	for (uint64_t r = 0; r < w->rows; r++) {
		const uint8_t *row = data(lb, lo, pk) + r * words * 4;
		uint32_t s = qs_load(f, data(ib, i8, qs) + r * f->esize);
		for (uint64_t g = 0; g < groups; g++) {
			uint64_t len = w->cols / groups;
			int m = 0;
			for (uint64_t i = g * len; i < (g + 1) * len; i++)
				m = abs(codes[r * w->cols + i]) > m ? abs(codes[r * w->cols + i]) : m;
			for (uint64_t i = g * len; i < (g + 1) * len; i++)
				if (packed_code(row, i, n) != ref_code(codes[r * w->cols + i], n, m))
					fail_msg("%s int%u row %llu code %llu: %d, want %d", w->name, n, (unsigned long long)r,
						 (unsigned long long)i, packed_code(row, i, n), ref_code(codes[r * w->cols + i], n, m));
			uint32_t got = qs_load(f, data(lb, lo, sc) + (r * groups + g) * f->esize);
			assert_int_equal(got, ref_scale(f, s, n, m));
		}
		for (uint64_t bit = w->cols * n; bit < words * 32; bit++)   /* zero padding */
			assert_int_equal(row[bit / 8] >> (bit % 8) & 1, 0);
	}
}

/* Every tensor of view N's file but the weights: the INT8 view's bytes. */
static void check_others(const uint8_t *lb, const qs_st_file *lo, const uint8_t *ib, const qs_st_file *i8)
{
	for (size_t i = 0; i < lo->n; i++) {
		const qs_st_tensor *t = &lo->t[i], *x = find(i8, t->name);
		if (strstr(t->name, "_packed") || strstr(t->name, "_shape") || strstr(t->name, "_scale"))
			continue;
		assert_non_null(x);
		if (!strcmp(x->dtype, "I8"))
			continue;   /* a weight left in float: check_weight */
		assert_string_equal(t->dtype, x->dtype);
		assert_memory_equal(data(lb, lo, t), data(ib, i8, x), t->end - t->begin);
	}
}

static void check_config(qs_container *c, unsigned n)
{
	size_t len;
	uint8_t *b = read_file(c, (qs_view)n, "config.json", &len);
	json_t *j = json_loadb((const char *)b, len, 0, NULL), *qc = json_object_get(j, "quantization_config");
	json_t *w = json_object_get(json_object_get(json_object_get(qc, "config_groups"), "group_0"), "weights");
	assert_string_equal(json_string_value(json_object_get(qc, "format")), "pack-quantized");
	assert_int_equal(json_integer_value(json_object_get(w, "num_bits")), n);
	assert_string_equal(json_string_value(json_object_get(w, "strategy")), n == 4 ? "group" : "channel");
	assert_int_equal(json_integer_value(json_object_get(w, "group_size")), n == 4 ? 128 : 0);
	assert_string_equal(json_string_value(json_object_get(j, "model_type")), "llama");
	json_t *ig = json_object_get(qc, "ignore");
	for (size_t i = 0; i + 1 < NW; i++) {   /* the last one is the embedding */
		char mod[256];
		snprintf(mod, sizeof(mod), "%.*s", (int)(strlen(W[i].name) - 7), W[i].name);
		int listed = 0;
		for (size_t k = 0; k < json_array_size(ig); k++)
			listed |= !strcmp(json_string_value(json_array_get(ig, k)), mod);
		assert_int_equal(listed, !presented_packed(&W[i], n));
	}
	assert_int_equal(b[len - 1], '\n');
	json_decref(j);
	free(b);
}

static void check_view_file(qs_container *c, unsigned n, const char *path)
{
	size_t ln, in, hn;
	uint8_t *lb = read_file(c, (qs_view)n, path, &ln), *ib = read_file(c, QS_VIEW_INT8, path, &in),
		*hb = read_file(c, QS_VIEW_HIGH, path, &hn);
	qs_st_file lo, i8, hi;
	parse(lb, ln, &lo);
	parse(ib, in, &i8);
	parse(hb, hn, &hi);
	for (size_t i = 0; i + 1 < NW; i++)
		if (find(&i8, W[i].name))
			check_weight(&W[i], n, lb, &lo, ib, &i8, hb, &hi);
	check_others(lb, &lo, ib, &i8);
	for (size_t i = 1; i < lo.n; i++) {   /* the reference writer's order */
		const qs_st_tensor *a = NULL, *b = NULL;
		for (size_t k = 0; k < lo.n; k++) {
			if (lo.t[k].begin == lo.t[i - 1].begin) a = &lo.t[k];
			if (lo.t[k].begin == lo.t[i].begin) b = &lo.t[k];
		}
		int da = qs_dtype_size(a->dtype), db = qs_dtype_size(b->dtype);
		assert_true(da > db || (da == db && strcmp(a->name, b->name) < 0));
	}
	qs_st_free(&lo);
	qs_st_free(&i8);
	qs_st_free(&hi);
	free(lb);
	free(ib);
	free(hb);
}

static void test_every_width_follows_the_rules(void **state)
{
	char *src = make_model(0), *qst = pack_it(src);
	size_t before_n, after_n;
	uint8_t *before = tt_read(qst, &before_n);
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(qst, QS_OPEN_LOW_VIEWS, &e);
	assert_non_null(c);
	for (unsigned n = 2; n <= 7; n++) {
		char dir[8];
		snprintf(dir, sizeof(dir), "int%u", n);
		assert_string_equal(qs_view_dir(c, (qs_view)n), dir);
		assert_int_equal(qs_file_count(c, (qs_view)n), qs_file_count(c, QS_VIEW_INT8));
		check_view_file(c, n, "model.safetensors");
		check_config(c, n);
	}
	qs_close(c);
	/* not asked for: absent */
	c = qs_open_ex(qst, QS_OPEN_INT(3), &e);
	assert_null(qs_view_dir(c, QS_VIEW_INT4));
	assert_int_equal(qs_file_count(c, QS_VIEW_INT4), 0);
	assert_non_null(qs_view_dir(c, QS_VIEW_INT3));
	qs_close(c);
	/* views, not data: presenting every one left the container as packed */
	uint8_t *after = tt_read(qst, &after_n);
	assert_int_equal(after_n, before_n);
	assert_memory_equal(after, before, before_n);
	free(before);
	free(after);
	drop(src, qst);
}

/* The scale face read before its codes (nothing kept: it reads and decodes
 * them itself) and after (the kept maxima: it reads nothing, which a copy
 * damaged in between shows): the same bytes as one sequential read; and
 * qs_piece_after names the codes' face only while nothing is kept. */
static void test_scale_before_codes(void **state)
{
	char *src = make_model(0), *qst = pack_it(src);
	qs_error e = { 0 };
	qs_container *a = qs_open_ex(qst, QS_OPEN_INT(4), &e), *b = qs_open_ex(qst, QS_OPEN_INT(4), &e);
	size_t n;
	uint8_t *whole = read_file(a, QS_VIEW_INT4, "model.safetensors", &n);
	qs_st_file st;
	parse(whole, n, &st);
	const qs_st_tensor *sc = find(&st, "model.layers.0.mlp.up_proj.weight_scale");
	const qs_st_tensor *pk = find(&st, "model.layers.0.mlp.up_proj.weight_packed");
	uint64_t so = st.data_start + sc->begin, sl = sc->end - sc->begin, po = st.data_start + pk->begin;
	size_t fi = (size_t)qs_file_find(b, QS_VIEW_INT4, "model.safetensors");
	qs_piece p[16];
	assert_int_equal(qs_map(b, QS_VIEW_INT4, fi, so, sl, p, 16), 2);   /* two chunks */
	assert_int_equal(p[0].span_len, 0);   /* a scale face never reads the container up front */
	qs_piece q[2];
	assert_int_equal(qs_map(b, QS_VIEW_INT4, fi, po, 1, q, 2), 1);
	assert_true(q[0].span_len > 0);
	/* a cache owner is told the scales are cheaper after the codes' face,
	 * until the maxima are kept */
	uint64_t after = UINT64_MAX;
	assert_int_equal(qs_piece_after(b, &p[0], &after), 1);
	assert_true(after == q[0].key && p[0].chunk == q[0].chunk);
	assert_int_equal(qs_piece_after(b, &q[0], &after), 0);
	qs_reader *r = qs_reader_new(b, &e);
	uint8_t buf[4096];
	assert_int_equal(qs_read(r, QS_VIEW_INT4, fi, so, buf, sl, &e), (ssize_t)sl);   /* before: decodes the codes */
	assert_memory_equal(buf, whole + so, sl);
	assert_int_equal(qs_piece_after(b, &p[0], &after), 0);   /* kept by that decode */
	uint8_t *pb = malloc(pk->end - pk->begin);
	assert_int_equal(qs_read(r, QS_VIEW_INT4, fi, po, pb, pk->end - pk->begin, &e), (ssize_t)(pk->end - pk->begin));
	assert_memory_equal(pb, whole + po, pk->end - pk->begin);
	qs_reader_free(r);
	/* damage the codes on disk: the kept maxima still give the scales; a
	 * container opened now, with nothing kept, must decode them and fails */
	size_t qn;
	uint8_t *raw = tt_read(qst, &qn);
	for (uint64_t i = 0; i < q[0].span_len; i++)
		raw[q[0].span_off + i] ^= 0x55;
	int fd = open(qst, O_WRONLY);
	assert_int_equal(pwrite(fd, raw, qn, 0), (ssize_t)qn);
	close(fd);
	free(raw);
	r = qs_reader_new(b, &e);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(qs_read(r, QS_VIEW_INT4, fi, so, buf, sl, &e), (ssize_t)sl);
	assert_memory_equal(buf, whole + so, sl);
	qs_reader_free(r);
	qs_container *fresh = qs_open_ex(qst, QS_OPEN_INT(4), &e);
	assert_non_null(fresh);
	r = qs_reader_new(fresh, &e);
	assert_int_equal(qs_read(r, QS_VIEW_INT4, fi, so, buf, sl, &e), -1);
	assert_int_equal(e.code, EIO);
	qs_reader_free(r);
	qs_close(fresh);
	free(pb);
	qs_st_free(&st);
	free(whole);
	qs_close(a);
	qs_close(b);
	drop(src, qst);
}

/* Every piece of file I of view V (SIZE bytes), in file order, into a new
 * array of *N. */
static qs_piece *all_pieces(qs_container *c, qs_view v, size_t i, uint64_t size, size_t *n)
{
	size_t cap = 64, got;
	qs_piece *p = malloc(cap * sizeof(qs_piece));
	*n = 0;
	for (uint64_t off = 0; (got = qs_map(c, v, i, off, size - off, p + *n, cap - *n)); ) {
		*n += got;
		off = p[*n - 1].file_off + p[*n - 1].len;
		if (*n == cap)
			p = realloc(p, (cap *= 2) * sizeof(qs_piece));
	}
	return p;
}

/* Every piece of every lower view decodes into a buffer of exactly its
 * decoded_size, as a cache owner gives it (qs_read's own buffer is larger:
 * ASan sees a write past the end only here), to the bytes qs_read gives. */
static void test_pieces_fill_exact_buffers(void **state)
{
	char *src = make_model(1), *qst = pack_it(src);
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(qst, QS_OPEN_LOW_VIEWS | QS_OPEN_SINGLE_FILE, &e);
	qs_reader *r = qs_reader_new(c, &e);
	size_t checked = 0;
	for (int v = QS_VIEW_INT2; v < QS_N_VIEWS; v++)
		for (size_t i = 0; i < qs_file_count(c, (qs_view)v); i++) {
			qs_file_info fi;
			qs_file_get(c, (qs_view)v, i, &fi);
			size_t n, np;
			uint8_t *whole = read_file(c, (qs_view)v, fi.path, &n);
			qs_piece *p = all_pieces(c, (qs_view)v, i, fi.size, &np);
			for (size_t k = 0; k < np; k++) {
				uint8_t *span = malloc(p[k].span_len + 1), *out = malloc(p[k].decoded_size);
				assert_int_equal(qs_read_span(c, &p[k], span, fi.path, &e), 0);
				assert_int_equal(qs_decode_piece(r, &p[k], span, out, fi.path, &e), (ssize_t)p[k].decoded_size);
				assert_memory_equal(out + p[k].chunk_off, whole + p[k].file_off, p[k].len);
				checked += p[k].face >= 2;
				free(span);
				free(out);
			}
			free(p);
			free(whole);
		}
	assert_true(checked > 50);
	qs_reader_free(r);
	qs_close(c);
	drop(src, qst);
}

/* Keys stay dense and one per (stream, face, chunk) with every view open. */
static void test_keys(void **state)
{
	char *src = make_model(1), *qst = pack_it(src);
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(qst, QS_OPEN_LOW_VIEWS | QS_OPEN_SINGLE_FILE, &e);
	assert_non_null(c);
	uint64_t nk = qs_key_count(c), *id = malloc(nk * sizeof(uint64_t));
	for (uint64_t k = 0; k < nk; k++)
		id[k] = UINT64_MAX;
	for (int v = 0; v < QS_N_VIEWS; v++)
		for (size_t i = 0; i < qs_file_count(c, (qs_view)v); i++) {
			qs_file_info fi;
			qs_file_get(c, (qs_view)v, i, &fi);
			size_t np;
			qs_piece *p = all_pieces(c, (qs_view)v, i, fi.size, &np);
			for (size_t k = 0; k < np; k++) {
				uint64_t who = (uint64_t)p[k].stream << 40 | (uint64_t)p[k].face << 32 | p[k].chunk;
				assert_true(p[k].key < nk);
				assert_true(id[p[k].key] == UINT64_MAX || id[p[k].key] == who);
				id[p[k].key] = who;
			}
			free(p);
		}
	free(id);
	/* the merged single file of a lower view holds the shards' bytes */
	ssize_t s = qs_single_file(c, QS_VIEW_INT4, NULL);
	assert_true(s >= 0);
	assert_string_equal(qs_single_file_name(c, QS_VIEW_INT4), "model-int4.safetensors");
	qs_close(c);
	drop(src, qst);
}

/* The shard index names the packed tensors where the shards hold them. */
static void test_sharded_index(void **state)
{
	char *src = make_model(1), *qst = pack_it(src);
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(qst, QS_OPEN_INT(4) | QS_OPEN_INT(2), &e);
	for (unsigned n = 2; n <= 4; n += 2) {
		size_t len;
		uint8_t *b = read_file(c, (qs_view)n, "model.safetensors.index.json", &len);
		json_t *j = json_loadb((const char *)b, len, 0, NULL), *wm = json_object_get(j, "weight_map");
		uint64_t total = 0;
		size_t want = 0;
		for (int k = 1; k <= 2; k++) {
			char path[64];
			snprintf(path, sizeof(path), "model-0000%d-of-00002.safetensors", k);
			size_t sn;
			uint8_t *sb = read_file(c, (qs_view)n, path, &sn);
			qs_st_file st;
			parse(sb, sn, &st);
			total += sn - st.data_start;
			want += st.n;
			for (size_t i = 0; i < st.n; i++)
				assert_string_equal(json_string_value(json_object_get(wm, st.t[i].name)), path);
			qs_st_free(&st);
			free(sb);
		}
		assert_int_equal(json_object_size(wm), want);   /* every key listed once, nothing else */
		assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "metadata"), "total_size")), total);
		json_decref(j);
		free(b);
		check_config(c, n);
	}
	qs_close(c);
	drop(src, qst);
}

/* Damaged codes: the packed tensor's read fails with EIO naming the tensor. */
static void test_damaged_codes(void **state)
{
	char *src = make_model(0), *qst = pack_it(src);
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(qst, QS_OPEN_INT(4), &e);
	size_t n;
	uint8_t *whole = read_file(c, QS_VIEW_INT4, "model.safetensors", &n);
	qs_st_file st;
	parse(whole, n, &st);
	const qs_st_tensor *pk = find(&st, "model.layers.0.self_attn.q_proj.weight_packed");
	size_t fi = (size_t)qs_file_find(c, QS_VIEW_INT4, "model.safetensors");
	qs_piece p[4];
	assert_int_equal(qs_map(c, QS_VIEW_INT4, fi, st.data_start + pk->begin, 1, p, 4), 1);
	uint64_t at = p[0].span_off + p[0].span_len / 2;
	qs_close(c);
	size_t qn;
	uint8_t *q = tt_read(qst, &qn);
	q[at] ^= 0x5a;
	tt_write_file(qst, q, qn);
	free(q);
	c = qs_open_ex(qst, QS_OPEN_INT(4), &e);
	assert_non_null(c);
	qs_reader *r = qs_reader_new(c, &e);
	uint8_t *buf = malloc(pk->end - pk->begin);
	assert_int_equal(qs_read(r, QS_VIEW_INT4, fi, st.data_start + pk->begin, buf, pk->end - pk->begin, &e), -1);
	assert_int_equal(e.code, EIO);
	assert_non_null(strstr(e.msg, "model.layers.0.self_attn.q_proj.weight"));
	assert_non_null(strstr(e.msg, "chunk 0"));
	qs_reader_free(r);
	free(buf);
	qs_close(c);
	qs_st_free(&st);
	free(whole);
	drop(src, qst);
}

/* Every kernel set packs INT4 as the portable one does: codes of every
 * value (-128 included), ties (q * 7 / m = k + 1/2), groups of zeros. */
static void test_kernels_agree(void **state)
{
	const qs_dec_kernels *ks[4];
	size_t nk = qs_dec_available(ks, 4), ne = 64 * QS_INT4_GROUP;
	int8_t *q = malloc(ne);
	uint8_t gm[2][64], out[2][64 * QS_INT4_GROUP / 2];
	for (int round = 0; round < 50; round++) {
		for (size_t i = 0; i < ne; i++) {
			size_t g = i / QS_INT4_GROUP;
			int lim = g % 8 == 0 ? 0 : g % 8 == 1 ? 128 : (int)(1 + rnd() % 128);
			q[i] = (int8_t)(lim ? (int)(rnd() % (2 * (unsigned)lim + 1)) - lim : 0);
			if (g % 8 == 1 && i % QS_INT4_GROUP == 5)
				q[i] = -128;
			if (g % 8 == 2 && i % 3 == 0)   /* m = 14 with 1s: 7/14 = 1/2, a tie */
				q[i] = (int8_t)(i % 2 ? 1 : -1);
			if (g % 8 == 2 && i % QS_INT4_GROUP == 0)
				q[i] = 14;
		}
		for (size_t k = 0; k < nk; k++) {
			ks[k]->max4(q, ne, gm[k ? 1 : 0]);
			ks[k]->pack4(q, ne, gm[k ? 1 : 0], out[k ? 1 : 0]);
			if (k) {
				assert_memory_equal(gm[0], gm[1], sizeof(gm[0]));
				assert_memory_equal(out[0], out[1], sizeof(out[0]));
			}
		}
		for (size_t g = 0; g < 64; g++) {   /* and the reference */
			int m = 0;
			for (int i = 0; i < QS_INT4_GROUP; i++)
				m = abs(q[g * QS_INT4_GROUP + i]) > m ? abs(q[g * QS_INT4_GROUP + i]) : m;
			assert_int_equal(gm[0][g], m);
			for (int i = 0; i < QS_INT4_GROUP; i++)
				assert_int_equal(packed_code(out[0] + g * QS_INT4_GROUP / 2, (uint64_t)i, 4),
						 ref_code(q[g * QS_INT4_GROUP + i], 4, m));
		}
	}
	print_message("INT4 kernels compared: %zu set(s)\n", nk);
	free(q);
}

static void test_lists(void **state)
{
	unsigned f;
	assert_int_equal(qs_parse_low_views("int4", &f), 0);
	assert_int_equal(f, QS_OPEN_INT(4));
	assert_int_equal(qs_parse_low_views("int4,int2:int7", &f), 0);
	assert_int_equal(f, QS_OPEN_INT(4) | QS_OPEN_INT(2) | QS_OPEN_INT(7));
	assert_int_equal(qs_parse_low_views("all", &f), 0);
	assert_int_equal(f, QS_OPEN_LOW_VIEWS);
	assert_int_equal(qs_parse_low_views("none", &f), 0);
	assert_int_equal(f, 0);
	const char *bad[] = { "", "int8", "int1", "int4,", ",int4", "int4,int4", "int44", "INT4", "int4 ", "all,int4" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(qs_parse_low_views(bad[i], &f), -1);
	assert_int_equal(qs_view_parse("int4"), QS_VIEW_INT4);
	assert_int_equal(qs_view_parse("high"), QS_VIEW_HIGH);
	assert_int_equal(qs_view_parse("int1"), -1);
	assert_string_equal(qs_view_name(QS_VIEW_INT7), "int7");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_width_follows_the_rules),
		cmocka_unit_test(test_scale_before_codes),
		cmocka_unit_test(test_pieces_fill_exact_buffers),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_sharded_index),
		cmocka_unit_test(test_damaged_codes),
		cmocka_unit_test(test_kernels_agree),
		cmocka_unit_test(test_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
