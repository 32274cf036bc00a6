/* verify.c - decode everything, check every chunk checksum and file SHA-256;
 * stream_file() is the one loop that decodes a whole file (unpack.c too). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "../common/sha256.h"

static void report(qs_report_fn fn, void *ctx, const char *line)
{
	if (fn)
		fn(ctx, line);
}

uint64_t qs_views_bytes(const qs_container *c, int v0, int v1)
{
	uint64_t n = 0;
	for (int v = v0; v <= v1; v++)
		for (size_t i = 0; i < c->ix->n_files[v]; i++)
			n += c->ix->files[v][i].size;
	return n;
}

/* Stream every byte of one file through fn (SHA-256, a write); compares the
 * recorded SHA-256 at the end.  Returns 0, -1 on a read error (err set) or
 * 1 on a hash mismatch. */
int qs_stream_file(qs_container *c, qs_reader *r, qs_view v, size_t i, uint8_t *buf, qs_sha256 *h,
		   int (*sink)(void *, const uint8_t *, size_t), void *sctx, qs_ticker *tk, uint8_t got[32],
		   qs_error *err)
{
	qs_file_info fi;
	qs_file_get(c, v, i, &fi);
	for (uint64_t off = 0; off < fi.size;) {
		ssize_t n = qs_read(r, v, i, off, buf, QS_IO_BLOCK, err);
		int bad = n <= 0 ? -1 : (qs_sha256_update(h, buf, (size_t)n), sink && sink(sctx, buf, (size_t)n)) ? -2 : 0;
		if (bad) {
			qs_sha256_final(h, got);   /* the next file starts from a clean hash */
			return bad == -1 ? -1 : qs_fail(err, errno, "%s: write error: %s", fi.path, strerror(errno));
		}
		off += (uint64_t)n;
		if (tk)
			qs_tick(tk, (uint64_t)n);
	}
	qs_sha256_final(h, got);
	return fi.has_sha256 && memcmp(got, fi.sha256, 32) ? 1 : 0;
}

long qs_verify(qs_container *c, qs_report_fn fn, void *ctx, const qs_progress *progress, qs_error *err)
{
	qs_ticker tk = { progress, 0, qs_views_bytes(c, QS_VIEW_HIGH, QS_N_VIEWS - 1), qs_now() };
	qs_reader *r = qs_reader_new(c, err);
	qs_sha256 *h = qs_sha256_new();
	uint8_t *buf = malloc(QS_IO_BLOCK);
	char line[1400];
	long problems = 0;
	if (!r || !h || !buf) {
		int rc = r ? qs_fail(err, ENOMEM, "out of memory") : -1;
		qs_reader_free(r);
		qs_sha256_free(h);
		free(buf);
		return rc;
	}
	uint8_t got[32];
	char hex[65];
	/* every view opened: the stored ones against their recorded SHA-256,
	 * generated files (single-file and lower views) decoded through every
	 * chunk check, their SHA-256 computed and reported */
	for (int v = 0; v < QS_N_VIEWS; v++) {
		const char *vn = qs_view_names[v];
		for (size_t i = 0; i < c->ix->n_files[v]; i++) {
			qs_error e = { 0 };
			const qs_vfile *f = &c->ix->files[v][i];
			int rc = qs_stream_file(c, r, (qs_view)v, i, buf, h, NULL, NULL, &tk, got, &e);
			qs_hex(got, 32, hex);
			if (rc < 0)
				snprintf(line, sizeof(line), "FAIL %s view: %s", vn, e.msg);
			else if (rc > 0)
				snprintf(line, sizeof(line), "FAIL %s view: %s: file '%s': SHA-256 mismatch", vn, c->path, f->path);
			else if (f->derived)
				snprintf(line, sizeof(line), "ok   %s view: %s (generated, sha256 %s)", vn, f->path, hex);
			else
				snprintf(line, sizeof(line), "ok   %s view: %s", vn, f->path);
			problems += rc != 0;
			report(fn, ctx, line);
		}
	}
	qs_tick_end(&tk);
	qs_reader_free(r);
	qs_sha256_free(h);
	free(buf);
	return problems;
}

