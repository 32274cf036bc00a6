/*
 * qsbench - decode-speed and size figures for one container and its source.
 *
 *   qsbench X.qst SRCDIR [--reps N]
 *
 * Prints one line per measurement as "key value" pairs for bench.sh:
 * single-thread decode of the whole high, INT8, INT4, INT3 and INT2 views through qs_read
 * (warm buffers, container in the page cache), zstd -3 of the same high
 * bytes (compress + decompress, one thread, libzstd), and the sizes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "qstore.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

#define BLK (4u << 20)

static double read_view(qs_container *c, qs_view v, uint8_t *buf, uint64_t *bytes)
{
	qs_reader *r = qs_reader_new(c, NULL);
	qs_error e;
	double t0 = now();
	*bytes = 0;
	for (size_t i = 0; i < qs_file_count(c, v); i++) {
		qs_file_info fi;
		qs_file_get(c, v, i, &fi);
		for (uint64_t off = 0; off < fi.size;) {
			ssize_t n = qs_read(r, v, i, off, buf, BLK, &e);
			if (n <= 0) {
				fprintf(stderr, "qsbench: %s\n", e.msg);
				exit(1);
			}
			off += (uint64_t)n;
			*bytes += (uint64_t)n;
		}
	}
	double t = now() - t0;
	qs_reader_free(r);
	return t;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: qsbench X.qst [--reps N] [--zstd FILE]\n");
		return 2;
	}
	int reps = 3;
	const char *zfile = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--zstd") && i + 1 < argc) zfile = argv[++i];
	}
	qs_error e;
	qs_container *c = qs_open_ex(argv[1], QS_OPEN_LOW_VIEWS, &e);
	if (!c) {
		fprintf(stderr, "qsbench: %s\n", e.msg);
		return 1;
	}
	uint8_t *buf = malloc(BLK);
	static const qs_view views[] = { QS_VIEW_HIGH, QS_VIEW_INT8, QS_VIEW_INT4, QS_VIEW_INT3, QS_VIEW_INT2 };
	for (int i = 0; i < 5; i++) {
		qs_view v = views[i];
		double best = 1e30;
		uint64_t bytes = 0;
		for (int k = 0; k < reps; k++) {
			double t = read_view(c, v, buf, &bytes);
			best = t < best ? t : best;
		}
		printf("decode_%s_bytes %llu\ndecode_%s_seconds %.6f\n", qs_view_name(v), (unsigned long long)bytes,
		       qs_view_name(v), best);
	}
	if (zfile) {
		/* zstd -3 on the same bytes, one thread, through libzstd */
		int fd = open(zfile, O_RDONLY);
		off_t n = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
		uint8_t *src = n > 0 ? malloc((size_t)n) : NULL, *dst = NULL, *back = NULL;
		if (!src || pread(fd, src, (size_t)n, 0) != n) {
			fprintf(stderr, "qsbench: cannot read %s\n", zfile);
			return 1;
		}
		size_t cap = ZSTD_compressBound((size_t)n), zl = 0;
		dst = malloc(cap);
		back = malloc((size_t)n);
		double bc = 1e30, bd = 1e30;
		for (int k = 0; k < reps; k++) {
			double t0 = now();
			zl = ZSTD_compress(dst, cap, src, (size_t)n, 3);
			double t1 = now();
			ZSTD_decompress(back, (size_t)n, dst, zl);
			double t2 = now();
			bc = t1 - t0 < bc ? t1 - t0 : bc;
			bd = t2 - t1 < bd ? t2 - t1 : bd;
		}
		printf("zstd3_in %lld\nzstd3_out %zu\nzstd3_c_seconds %.6f\nzstd3_d_seconds %.6f\nzstd3_roundtrip_ok %d\n",
		       (long long)n, zl, bc, bd, !memcmp(src, back, (size_t)n));
		free(src); free(dst); free(back);
		close(fd);
	}
	free(buf);
	qs_close(c);
	return 0;
}
