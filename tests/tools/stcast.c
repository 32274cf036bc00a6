/*
 * stcast - copy a model directory, casting every F32 tensor of its
 * safetensors files to BF16 or F16 (round to nearest even), the way
 * `model.to(dtype).save_pretrained()` would, for real-weights benchmarks
 * without Python.  Other files are copied as they are.
 *
 *   stcast SRC_DIR DST_DIR bf16|f16
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../codec/common/safetensors.h"
#include "halfcast.h"

static int to_bf16;

static uint16_t cast(float f)
{
	return to_bf16 ? f32_to_bf16(f) : f32_to_f16(f);
}

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	if (!f) { perror(p); exit(1); }
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*n + 1);
	if (fread(b, 1, *n, f) != *n) { perror(p); exit(1); }
	fclose(f);
	return b;
}

typedef struct { const qs_st_tensor *t; const char *dtype; int dsize; } ent;
static int cmp(const void *a, const void *b)
{
	const ent *x = a, *y = b;
	return x->dsize != y->dsize ? y->dsize - x->dsize : strcmp(x->t->name, y->t->name);
}

static void cast_file(const char *src, const char *dst)
{
	size_t n;
	uint8_t *b = slurp(src, &n);
	qs_st_file f;
	qs_error e;
	if (n < 8 || qs_st_parse(src, b + 8, rd64(b), n, &f, &e)) { fprintf(stderr, "stcast: %s\n", e.msg); exit(1); }
	ent *v = calloc(f.n + 1, sizeof(ent));
	for (size_t i = 0; i < f.n; i++) {
		int c = !strcmp(f.t[i].dtype, "F32");
		v[i] = (ent){ &f.t[i], c ? (to_bf16 ? "BF16" : "F16") : f.t[i].dtype, c ? 2 : f.t[i].dsize };
	}
	qsort(v, f.n, sizeof(ent), cmp);
	json_t *h = json_object();
	if (f.metadata) json_object_set(h, "__metadata__", f.metadata);
	uint64_t at = 0;
	for (size_t i = 0; i < f.n; i++) {
		uint64_t len = strcmp(v[i].dtype, v[i].t->dtype) ? (v[i].t->end - v[i].t->begin) / 2 : v[i].t->end - v[i].t->begin;
		json_t *shape = json_array();
		for (int d = 0; d < v[i].t->ndim; d++) json_array_append_new(shape, json_integer((json_int_t)v[i].t->shape[d]));
		json_object_set_new(h, v[i].t->name, json_pack("{s:s, s:o, s:[I,I]}", "dtype", v[i].dtype, "shape", shape,
							      "data_offsets", (json_int_t)at, (json_int_t)(at + len)));
		at += len;
	}
	char *js = json_dumps(h, JSON_COMPACT);
	size_t jl = strlen(js), pad = (8 - jl % 8) % 8;
	FILE *o = fopen(dst, "wb");
	uint64_t hl = jl + pad;
	fwrite(&hl, 8, 1, o);
	fwrite(js, 1, jl, o);
	for (size_t i = 0; i < pad; i++) fputc(' ', o);
	for (size_t i = 0; i < f.n; i++) {
		const uint8_t *d = b + f.data_start + v[i].t->begin;
		uint64_t len = v[i].t->end - v[i].t->begin;
		if (strcmp(v[i].dtype, v[i].t->dtype)) {
			for (uint64_t k = 0; k < len / 4; k++) {
				float x;
				memcpy(&x, d + 4 * k, 4);
				uint16_t y = cast(x);
				fwrite(&y, 2, 1, o);
			}
		} else {
			fwrite(d, 1, len, o);
		}
	}
	fclose(o);
	free(js); json_decref(h); free(v); qs_st_free(&f); free(b);
}

static void walk(const char *src, const char *dst)
{
	DIR *d = opendir(src);
	struct dirent *de;
	if (!d) { perror(src); exit(1); }
	mkdir(dst, 0755);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
		char s[4096], t[4096];
		struct stat st;
		snprintf(s, sizeof(s), "%s/%s", src, de->d_name);
		snprintf(t, sizeof(t), "%s/%s", dst, de->d_name);
		stat(s, &st);
		size_t l = strlen(de->d_name);
		if (S_ISDIR(st.st_mode)) walk(s, t);
		else if (l > 12 && !strcmp(de->d_name + l - 12, ".safetensors")) cast_file(s, t);
		else {
			size_t n;
			uint8_t *b = slurp(s, &n);
			FILE *o = fopen(t, "wb");
			fwrite(b, 1, n, o);
			fclose(o);
			free(b);
		}
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[3], "bf16") && strcmp(argv[3], "f16"))) {
		fprintf(stderr, "usage: stcast SRC_DIR DST_DIR bf16|f16\n");
		return 2;
	}
	to_bf16 = !strcmp(argv[3], "bf16");
	walk(argv[1], argv[2]);
	return 0;
}
