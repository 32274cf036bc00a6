/*
 * test_container.c - pack -> open -> read, through the public API only:
 * byte-exact high view at random offsets, a valid INT8 view whose codes are
 * the quantiser's, determinism across thread counts, and damage in every
 * region of the container refused with a clear error and never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>

#include "qstore.h"
#include "testutil.h"
#include "../tools/halfcast.h"
#include "../../codec/common/floatfmt.h"
#include "../../codec/common/safetensors.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
	return rng;
}
static double gauss(void)
{
	double s = 0;
	for (int i = 0; i < 4; i++)
		s += (double)(rnd() >> 11) / 9007199254740992.0;
	return (s - 2.0) * 1.7320508;
}

static uint8_t *weights(const char *dtype, uint64_t rows, uint64_t cols, int special)
{
	const qs_fmtinfo *f = qs_fmt_info(qs_fmt_from_dtype(dtype));
	uint8_t *d = malloc(rows * cols * f->esize + 1);
	for (uint64_t r = 0; r < rows; r++) {
		double sc = 0.02 * (1 + 3 * (double)(rnd() % 100) / 100);
		for (uint64_t c = 0; c < cols; c++) {
			float v = (float)(gauss() * sc);
			uint32_t x;
			memcpy(&x, &v, 4);
			if (f->esize == 2)
				x = f->fmt == QS_FMT_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
			if (special && r == 1)
				x = c % 2 ? 1u << (f->esize * 8 - 1) : 0;   /* a row of +-0 */
			if (special && r == 2 && c < 3)
				x = (uint32_t)(1 + c);                       /* subnormals */
			qs_store(f, d + (r * cols + c) * f->esize, x);
		}
	}
	return d;
}

/* A model with every awkward case; returns its directory. */
static char *make_model(int sharded)
{
	char *dir = tt_tmpdir(), path[4200];
	static uint8_t odd[3] = { 1, 2, 3 }, i64[16] = { 7 }, scalar[2] = { 0x80, 0x3f };
	uint8_t *nanrow = weights("BF16", 4, 8, 0);
	nanrow[3] = 0x7f; nanrow[2] = 0xc1;   /* NaN payload: this weight stays float */
	uint8_t *special = malloc(16);
	uint16_t sv[8] = { 0x7fc1, 0xffa5, 0x7f80, 0xff80, 0x8000, 0x0001, 0x8003, 0 };
	memcpy(special, sv, 16);
	tt_tensor t[] = {
		{ "model.odd_bytes", "U8", 1, { 3 }, odd, 3 },   /* makes every later offset odd */
		{ "model.layers.0.mlp.up_proj.weight", "BF16", 2, { 37, 300 }, weights("BF16", 37, 300, 1), 37 * 300 * 2 },
		{ "model.scalar", "BF16", 0, { 0 }, scalar, 2 },
		{ "model.empty.weight", "BF16", 2, { 0, 7 }, odd, 0 },
		{ "model.layers.0.self_attn.q_proj.weight", "F16", 2, { 19, 64 }, weights("F16", 19, 64, 1), 19 * 64 * 2 },
		{ "model.layers.0.self_attn.k_proj.weight", "F32", 2, { 9, 70 }, weights("F32", 9, 70, 1), 9 * 70 * 4 },
		{ "model.layers.0.self_attn.v_proj.weight", "BF16", 2, { 4, 8 }, nanrow, 64 },
		{ "model.special", "BF16", 1, { 8 }, special, 16 },
		{ "model.ids", "I64", 1, { 2 }, i64, 16 },
		{ "model.packed", "F4_E2M1", 1, { 3 }, odd, 3 },
		{ "model.embed_tokens.weight", "BF16", 2, { 50, 16 }, weights("BF16", 50, 16, 0), 50 * 16 * 2 },
		{ "lm_head.weight", "BF16", 2, { 50, 16 }, weights("BF16", 50, 16, 0), 50 * 16 * 2 },
		{ "model.layers.1.mlp.down_proj.weight", "BF16", 2, { 3, 9000 }, weights("BF16", 3, 9000, 0), 3 * 9000 * 2 },
	};
	int n = (int)(sizeof(t) / sizeof(t[0]));
	if (!sharded) {
		snprintf(path, sizeof(path), "%s/model.safetensors", dir);
		tt_write_st(path, t, n, "\"__metadata__\":{\"format\":\"pt\"}");
	} else {
		tt_write_two_shards(dir, t, n, 6);
	}
	snprintf(path, sizeof(path), "%s/config.json", dir);
	tt_write_file(path, "{\"model_type\": \"llama\", \"hidden_size\": 16}\n", 43);
	snprintf(path, sizeof(path), "%s/sub", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sub/tokenizer.json", dir);
	tt_write_file(path, "{\"vocab\": {}}", 13);
	for (int i = 1; i < n; i++)
		if (t[i].data != odd && t[i].data != scalar && t[i].data != i64 && t[i].data != special)
			free((void *)t[i].data);
	free(special);
	return dir;
}

static char *pack_it(const char *src, int threads, size_t chunk)
{
	char *out = NULL;
	if (asprintf(&out, "%s.qst", src) < 0)
		abort();
	qs_pack_options o = { .threads = threads, .chunk_bytes = chunk };
	qs_error e = { 0 };
	unlink(out);
	if (qs_pack(src, out, &o, NULL, &e))
		fail_msg("pack: %s", e.msg);
	return out;
}

/* the source file behind high view file I */
static uint8_t *source_of(qs_container *c, const char *src, size_t i, size_t *n)
{
	qs_file_info fi;
	char path[4200];
	qs_file_get(c, QS_VIEW_HIGH, i, &fi);
	snprintf(path, sizeof(path), "%s/%s", src, fi.path);
	uint8_t *d = tt_read(path, n);
	assert_non_null(d);
	assert_int_equal(fi.size, *n);
	return d;
}

static void check_high_view(qs_container *c, const char *src)
{
	qs_reader *r = qs_reader_new(c, NULL);
	qs_error e;
	for (size_t i = 0; i < qs_file_count(c, QS_VIEW_HIGH); i++) {
		size_t n;
		uint8_t *orig = source_of(c, src, i, &n), *buf = malloc(n + 64);
		assert_int_equal(qs_read(r, QS_VIEW_HIGH, i, 0, buf, n + 64, &e), (ssize_t)n);
		assert_memory_equal(buf, orig, n);
		for (int k = 0; k < 300 && n; k++) {
			uint64_t off = rnd() % n, len = 1 + rnd() % (k % 10 ? 100 : 20000);
			ssize_t got = qs_read(r, QS_VIEW_HIGH, i, off, buf, len, &e);
			assert_int_equal(got, (ssize_t)(len < n - off ? len : n - off));
			assert_memory_equal(buf, orig + off, (size_t)got);
		}
		assert_int_equal(qs_read(r, QS_VIEW_HIGH, i, n + 5, buf, 10, &e), 0);
		free(orig);
		free(buf);
	}
	qs_reader_free(r);
}

static uint8_t *read_view_file(qs_container *c, qs_view v, const char *path, size_t *n)
{
	ssize_t i = qs_file_find(c, v, path);
	assert_true(i >= 0);
	qs_file_info fi;
	qs_file_get(c, v, (size_t)i, &fi);
	qs_reader *r = qs_reader_new(c, NULL);
	qs_error e;
	uint8_t *b = malloc(fi.size + 1);
	assert_int_equal(qs_read(r, v, (size_t)i, 0, b, fi.size, &e), (ssize_t)fi.size);
	qs_reader_free(r);
	*n = fi.size;
	return b;
}

/* The INT8 file is a valid safetensors file; quantised weights are the
 * quantiser's codes of the original and dequantise within half a step. */
static void check_int8_file(qs_container *c, const char *src, const char *name, int *quantised)
{
	char path[4200];
	size_t n8, nh;
	snprintf(path, sizeof(path), "%s/%s", src, name);
	uint8_t *hi = tt_read(path, &nh), *lo = read_view_file(c, QS_VIEW_INT8, name, &n8);
	qs_st_file fh, f8;
	qs_error e;
	assert_int_equal(qs_st_parse(name, hi + 8, rd64(hi), nh, &fh, &e), 0);
	if (qs_st_parse(name, lo + 8, rd64(lo), n8, &f8, &e))
		fail_msg("int8 view invalid: %s", e.msg);
	for (size_t i = 0; i < f8.n; i++)   /* the reference writer's alignment */
		assert_int_equal(f8.t[i].begin % (f8.t[i].dsize ? (uint64_t)f8.t[i].dsize : 1), 0);
	for (size_t i = 0; i < fh.n; i++) {
		const qs_st_tensor *t = &fh.t[i], *q = NULL, *s = NULL;
		char sname[300];
		snprintf(sname, sizeof(sname), "%s_scale", t->name);
		for (size_t k = 0; k < f8.n; k++) {
			if (!strcmp(f8.t[k].name, t->name)) q = &f8.t[k];
			if (!strcmp(f8.t[k].name, sname)) s = &f8.t[k];
		}
		assert_non_null(q);
		const uint8_t *hd = hi + fh.data_start + t->begin, *qd = lo + f8.data_start + q->begin;
		if (strcmp(q->dtype, "I8")) {
			assert_null(s);
			assert_int_equal(q->end - q->begin, t->end - t->begin);
			assert_memory_equal(hd, qd, t->end - t->begin);
			continue;
		}
		(*quantised)++;
		assert_non_null(s);
		assert_string_equal(s->dtype, t->dtype);
		assert_int_equal(s->shape[0], t->shape[0]);
		assert_int_equal(s->shape[1], 1);
		const qs_fmtinfo *f = qs_fmt_info(qs_fmt_from_dtype(t->dtype));
		const uint8_t *sd = lo + f8.data_start + s->begin;
		for (uint64_t r = 0; r < t->shape[0]; r++) {
			float sc = qs_to_f32(f, qs_load(f, sd + r * f->esize));
			for (uint64_t col = 0; col < t->shape[1]; col++) {
				uint64_t k = r * t->shape[1] + col;
				float w = qs_to_f32(f, qs_load(f, hd + k * f->esize));
				int8_t code = (int8_t)qd[k];
				assert_int_equal(code, qs_quant(w, sc));
				double err = (double)w - (double)code * sc;
				/* half a step, plus the rounding of the one f32 division */
				double tol = (0.5 + 128.0 / 8388608.0) * sc;
				if (!(err <= tol && err >= -tol))
					fail_msg("%s [%llu,%llu]: w=%g code=%d scale=%g", t->name, (unsigned long long)r, (unsigned long long)col, w, code, sc);
			}
		}
	}
	qs_st_free(&fh);
	qs_st_free(&f8);
	free(hi);
	free(lo);
}

static void check_config(qs_container *c)
{
	size_t n;
	uint8_t *b = read_view_file(c, QS_VIEW_INT8, "config.json", &n);
	json_t *j = json_loadb((const char *)b, n, 0, NULL), *qc = json_object_get(j, "quantization_config");
	assert_non_null(qc);
	assert_string_equal(json_string_value(json_object_get(qc, "quant_method")), "compressed-tensors");
	assert_string_equal(json_string_value(json_object_get(qc, "format")), "naive-quantized");
	json_t *ign = json_object_get(qc, "ignore");
	int lm = 0, vproj = 0;
	for (size_t i = 0; i < json_array_size(ign); i++) {
		lm |= !strcmp(json_string_value(json_array_get(ign, i)), "lm_head");
		vproj |= !strcmp(json_string_value(json_array_get(ign, i)), "model.layers.0.self_attn.v_proj");
	}
	assert_true(lm && vproj);   /* lm_head by rule, v_proj because it holds a NaN */
	json_decref(j);
	free(b);
}

/* qs_progress: what verify reports never goes back, never passes the
 * total, and ends with done == total = both views' bytes */
typedef struct prog_seen { uint64_t last, total, calls; int backwards; } prog_seen;
static void prog_record(void *ctx, uint64_t done, uint64_t total)
{
	prog_seen *p = ctx;
	p->backwards |= done < p->last || done > total || (p->calls && total != p->total);
	p->last = done;
	p->total = total;
	p->calls++;
}

static uint64_t views_bytes(qs_container *c)
{
	uint64_t n = 0;
	for (int v = 0; v < 2; v++)
		for (size_t i = 0; i < qs_file_count(c, (qs_view)v); i++) {
			qs_file_info fi;
			qs_file_get(c, (qs_view)v, i, &fi);
			n += fi.size;
		}
	return n;
}

static void test_roundtrip_single(void **state)
{
	(void)state;
	char *src = make_model(0);
	char *out = pack_it(src, 2, 4096);   /* small chunks: rows split across chunks */
	qs_error e;
	qs_container *c = qs_open(out, &e);
	assert_non_null(c);
	check_high_view(c, src);
	int nq = 0;
	check_int8_file(c, src, "model.safetensors", &nq);
	assert_int_equal(nq, 4);   /* up, q (f16), k (f32), down; not v (NaN), embed, lm_head */
	check_config(c);
	prog_seen seen = { 0 };
	qs_progress pr = { prog_record, &seen };
	assert_int_equal(qs_verify(c, NULL, NULL, &pr, &e), 0);
	assert_true(seen.calls >= 1 && !seen.backwards);
	assert_true(seen.last == seen.total && seen.total == views_bytes(c));
	qs_close(c);
	unlink(out);
	tt_rmrf(src);
	free(out);
	free(src);
}

static void test_roundtrip_sharded(void **state)
{
	(void)state;
	char *src = make_model(1);
	char *out = pack_it(src, 1, 0);
	qs_error e;
	qs_container *c = qs_open(out, &e);
	assert_non_null(c);
	check_high_view(c, src);
	int nq = 0;
	check_int8_file(c, src, "model-00001-of-00002.safetensors", &nq);
	check_int8_file(c, src, "model-00002-of-00002.safetensors", &nq);
	assert_int_equal(nq, 4);
	size_t n;
	uint8_t *b = read_view_file(c, QS_VIEW_INT8, "model.safetensors.index.json", &n);
	json_t *j = json_loadb((const char *)b, n, 0, NULL), *wm = json_object_get(j, "weight_map");
	assert_string_equal(json_string_value(json_object_get(wm, "model.layers.1.mlp.down_proj.weight_scale")),
			    "model-00002-of-00002.safetensors");
	assert_null(json_object_get(wm, "lm_head.weight_scale"));
	json_decref(j);
	free(b);
	assert_int_equal(qs_verify(c, NULL, NULL, NULL, &e), 0);
	qs_close(c);
	unlink(out);
	tt_rmrf(src);
	free(out);
	free(src);
}

static void test_deterministic(void **state)
{
	(void)state;
	char *src = make_model(0), *a = NULL, *b = NULL;
	size_t na, nb;
	for (int threads = 1; threads <= 4; threads += 3) {
		char *o = pack_it(src, threads, 8192);
		uint8_t *d = tt_read(o, threads == 1 ? &na : &nb);
		if (threads == 1) a = (char *)d; else b = (char *)d;
		unlink(o);
		free(o);
	}
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, na);
	free(a);
	free(b);
	tt_rmrf(src);
	free(src);
}

/* ---- damage --------------------------------------------------------------- */

static void write_copy(const char *path, const uint8_t *d, size_t n) { tt_write_file(path, d, n); }

static void test_damage(void **state)
{
	(void)state;
	char *src = make_model(0), *out = pack_it(src, 2, 4096), bad[4300];
	size_t n;
	uint8_t *orig = tt_read(out, &n), *d = malloc(n);
	qs_error e;
	snprintf(bad, sizeof(bad), "%s.bad", out);
	/* truncation anywhere: refused at open */
	for (size_t cut = 0; cut < n; cut += n / 37 + 1) {
		write_copy(bad, orig, cut);
		qs_container *c = qs_open(bad, &e);
		assert_null(c);
		assert_non_null(strstr(e.msg, bad));
	}
	/* one flipped byte anywhere: refused at open, or every read of damaged
	 * data fails with EIO and verify reports it; never wrong bytes */
	int refused = 0, reported = 0;
	for (size_t at = 0; at < n; at += n / 400 + 1) {
		memcpy(d, orig, n);
		d[at] ^= 0x5a;
		write_copy(bad, d, n);
		qs_container *c = qs_open(bad, &e);
		if (!c) {
			refused++;
			continue;
		}
		long problems = qs_verify(c, NULL, NULL, NULL, &e);
		if (problems) {
			reported++;
			qs_reader *r = qs_reader_new(c, NULL);
			/* any successful read must still return the original bytes */
			for (size_t i = 0; i < qs_file_count(c, QS_VIEW_HIGH); i++) {
				size_t on;
				uint8_t *o = source_of(c, src, i, &on), *buf = malloc(on + 1);
				for (uint64_t off = 0; off < on; off += 4096) {
					ssize_t got = qs_read(r, QS_VIEW_HIGH, i, off, buf, 4096, &e);
					if (got < 0) {
						assert_int_equal(e.code, EIO);
						assert_non_null(strstr(e.msg, "chunk"));
						assert_non_null(strstr(e.msg, "tensor"));
					} else {
						assert_memory_equal(buf, o + off, (size_t)got);
					}
				}
				free(o);
				free(buf);
			}
			qs_reader_free(r);
		}
		qs_close(c);
	}
	assert_true(refused > 0 && reported > 0);
	/* a future version is refused by name */
	memcpy(d, orig, n);
	d[8] = 9;
	write_copy(bad, d, n);
	assert_null(qs_open(bad, &e));
	assert_non_null(strstr(e.msg, "version"));
	unlink(bad);
	unlink(out);
	tt_rmrf(src);
	free(orig); free(d); free(out); free(src);
}

static void test_bad_sources(void **state)
{
	(void)state;
	char *dir = tt_tmpdir(), path[4200], out[4300];
	qs_error e;
	uint8_t data[64] = { 0 };
	tt_tensor a = { "a.weight", "BF16", 2, { 2, 4 }, data, 16 };
	snprintf(out, sizeof(out), "%s/out.qst", dir);
	/* not a safetensors file */
	snprintf(path, sizeof(path), "%s/x.safetensors", dir);
	tt_write_file(path, "hello", 5);
	assert_int_equal(qs_pack(path, out, NULL, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "x.safetensors"));
	/* repeated tensor across shards */
	snprintf(path, sizeof(path), "%s/m", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/m/a.safetensors", dir);
	tt_write_st(path, &a, 1, NULL);
	snprintf(path, sizeof(path), "%s/m/b.safetensors", dir);
	tt_write_st(path, &a, 1, NULL);
	snprintf(path, sizeof(path), "%s/m", dir);
	assert_int_equal(qs_pack(path, out, NULL, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "'a.weight'"));
	/* index naming a missing shard, and a shard name with '/' */
	snprintf(path, sizeof(path), "%s/m/b.safetensors", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/m/model.safetensors.index.json", dir);
	tt_write_file(path, "{\"weight_map\":{\"a.weight\":\"gone.safetensors\"}}", 46);
	snprintf(path, sizeof(path), "%s/m", dir);
	assert_int_equal(qs_pack(path, out, NULL, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "missing"));
	snprintf(path, sizeof(path), "%s/m/model.safetensors.index.json", dir);
	tt_write_file(path, "{\"weight_map\":{\"a.weight\":\"../a.safetensors\"}}", 46);
	snprintf(path, sizeof(path), "%s/m", dir);
	assert_int_equal(qs_pack(path, out, NULL, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "invalid shard name"));
	/* nothing left behind */
	assert_int_equal(access(out, F_OK), -1);
	char cmd[4400];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s | grep -v '^x.safetensors$' | grep -v '^m$')\"", dir);
	assert_int_equal(system(cmd), 0);
	tt_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_single),
		cmocka_unit_test(test_roundtrip_sharded),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_bad_sources),
	};
	return cmocka_run_group_tests_name("container", tests, NULL, NULL);
}
