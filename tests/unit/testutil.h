/* testutil.h - writing model directories and safetensors files for tests. */
#ifndef QS_TESTUTIL_H
#define QS_TESTUTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

typedef struct tt_tensor {
	const char *name, *dtype;
	int ndim;
	uint64_t shape[4];
	const void *data;
	uint64_t bytes;
} tt_tensor;

static inline void tt_write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n) {
		perror(path);
		abort();
	}
	fclose(f);
}

/* Header written in the given order (offsets in that order); `extra` is
 * spliced in verbatim before the closing brace (for __metadata__ or junk). */
static inline void tt_write_st(const char *path, const tt_tensor *t, int n, const char *extra)
{
	char *h = malloc(1 << 20);
	size_t l = 0;
	uint64_t off = 0;
	l += (size_t)sprintf(h + l, "{");
	for (int i = 0; i < n; i++) {
		l += (size_t)sprintf(h + l, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name, t[i].dtype);
		for (int d = 0; d < t[i].ndim; d++)
			l += (size_t)sprintf(h + l, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
		l += (size_t)sprintf(h + l, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
				     (unsigned long long)(off + t[i].bytes));
		off += t[i].bytes;
	}
	if (extra)
		l += (size_t)sprintf(h + l, "%s%s", n ? "," : "", extra);
	l += (size_t)sprintf(h + l, "}");
	while (l % 8)
		h[l++] = ' ';
	FILE *f = fopen(path, "wb");
	uint64_t hl = l;
	fwrite(&hl, 8, 1, f);
	fwrite(h, 1, l, f);
	for (int i = 0; i < n; i++)
		fwrite(t[i].data, 1, t[i].bytes, f);
	fclose(f);
	free(h);
}

/* DIR/model-0000{1,2}-of-00002.safetensors holding T[0..split) and
 * T[split..n), and the shard index naming them. */
static inline void tt_write_two_shards(const char *dir, const tt_tensor *t, int n, int split)
{
	static const char *const shard[2] = { "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" };
	char path[4200];
	for (int k = 0; k < 2; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, shard[k]);
		tt_write_st(path, t + (k ? split : 0), k ? n - split : split, NULL);
	}
	json_t *wm = json_object();
	for (int i = 0; i < n; i++)
		json_object_set_new(wm, t[i].name, json_string(shard[i >= split]));
	json_t *idx = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 1, "weight_map", wm);
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	json_dump_file(idx, path, JSON_INDENT(2));
	json_decref(idx);
}

static inline char *tt_tmpdir(void)
{
	char *d = strdup("/tmp/qstest.XXXXXX");
	if (!mkdtemp(d))
		abort();
	return d;
}

static inline void tt_rmrf(const char *d)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd)) {}
}

static inline uint8_t *tt_read(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	*n = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)sz + 1);
	if (fread(b, 1, (size_t)sz, f) != (size_t)sz) {}
	fclose(f);
	*n = (size_t)sz;
	return b;
}

#endif
