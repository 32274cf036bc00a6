/* verify.c - decode everything, check every chunk checksum and file SHA-256;
 * unpack a view into a new directory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/container.h"
#include "../common/sha256.h"

#define IO_BLOCK (4u << 20)

static const char *VIEW_NAME[2] = { "high", "int8" };

static void report(qs_report_fn fn, void *ctx, const char *line)
{
	if (fn)
		fn(ctx, line);
}

/* Stream every byte of one file through fn (SHA-256, a write); compares the
 * recorded SHA-256 at the end.  Returns 0, -1 on a read error (err set) or
 * 1 on a hash mismatch. */
static int stream_file(qs_container *c, qs_reader *r, qs_view v, size_t i, uint8_t *buf, qs_sha256 *h,
		       int (*sink)(void *, const uint8_t *, size_t), void *sctx, qs_error *err)
{
	qs_file_info fi;
	uint8_t got[32];
	qs_file_get(c, v, i, &fi);
	for (uint64_t off = 0; off < fi.size;) {
		ssize_t n = qs_read(r, v, i, off, buf, IO_BLOCK, err);
		if (n <= 0)
			return -1;
		qs_sha256_update(h, buf, (size_t)n);
		if (sink && sink(sctx, buf, (size_t)n))
			return qs_fail(err, errno, "%s: write error: %s", fi.path, strerror(errno));
		off += (uint64_t)n;
	}
	qs_sha256_final(h, got);
	return fi.has_sha256 && memcmp(got, fi.sha256, 32) ? 1 : 0;
}

long qs_verify(qs_container *c, qs_report_fn fn, void *ctx, qs_error *err)
{
	qs_reader *r = qs_reader_new(c);
	qs_sha256 *h = qs_sha256_new();
	uint8_t *buf = malloc(IO_BLOCK);
	char line[1400];
	long problems = 0;
	if (!r || !h || !buf) {
		qs_reader_free(r);
		qs_sha256_free(h);
		free(buf);
		return qs_fail(err, ENOMEM, "out of memory");
	}
	for (int v = 0; v < 2; v++) {
		for (size_t i = 0; i < c->ix->n_files[v]; i++) {
			qs_error e = { 0 };
			int rc = stream_file(c, r, (qs_view)v, i, buf, h, NULL, NULL, &e);
			if (rc < 0)
				snprintf(line, sizeof(line), "FAIL %s view: %s", VIEW_NAME[v], e.msg);
			else if (rc > 0)
				snprintf(line, sizeof(line), "FAIL %s view: %s: file '%s': SHA-256 mismatch", VIEW_NAME[v],
					 c->path, c->ix->files[v][i].path);
			else
				snprintf(line, sizeof(line), "ok   %s view: %s", VIEW_NAME[v], c->ix->files[v][i].path);
			problems += rc != 0;
			report(fn, ctx, line);
		}
	}
	qs_reader_free(r);
	qs_sha256_free(h);
	free(buf);
	return problems;
}

/* ---- unpack ------------------------------------------------------------ */

static int fd_sink(void *ctx, const uint8_t *p, size_t n)
{
	return qs_write_full(*(int *)ctx, p, n);
}

static int mkdirs(char *path)
{
	for (char *s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		int rc = mkdir(path, 0755);
		*s = '/';
		if (rc && errno != EEXIST)
			return -1;
	}
	return 0;
}


static int rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	return remove(p);
}

int qs_unpack(qs_container *c, qs_view view, const char *dir, qs_error *err)
{
	struct stat st;
	if ((unsigned)view > 1)
		return qs_fail(err, EINVAL, "bad view");
	if (!lstat(dir, &st))
		return qs_fail(err, EEXIST, "%s: already exists (unpack writes a new directory)", dir);
	char *d = strdup(dir), *b = strdup(dir), *tmp = NULL;
	if (!d || !b || asprintf(&tmp, "%s/.%s.tmp.XXXXXX", dirname(d), basename(b)) < 0 || !mkdtemp(tmp)) {
		int rc = qs_fail(err, errno ? errno : ENOMEM, "%s: cannot create a temporary directory: %s", dir, strerror(errno));
		free(d); free(b); free(tmp);
		return rc;
	}
	free(d);
	free(b);
	qs_reader *r = qs_reader_new(c);
	qs_sha256 *h = qs_sha256_new();
	uint8_t *buf = malloc(IO_BLOCK);
	int rc = r && h && buf ? 0 : qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < c->ix->n_files[view] && !rc; i++) {
		const qs_vfile *f = &c->ix->files[view][i];
		char *path = NULL;
		if (asprintf(&path, "%s/%s", tmp, f->path) < 0) {
			rc = qs_fail(err, ENOMEM, "out of memory");
			break;
		}
		int fd = mkdirs(path) ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = qs_fail(err, errno, "%s: %s", path, strerror(errno));
		} else {
			int s = stream_file(c, r, view, i, buf, h, fd_sink, &fd, err);
			if (s > 0)
				rc = qs_fail(err, EIO, "%s: file '%s': SHA-256 mismatch after decoding", c->path, f->path);
			else if (s < 0 || fsync(fd))
				rc = s < 0 ? -1 : qs_fail(err, errno, "%s: %s", path, strerror(errno));
			close(fd);
		}
		free(path);
	}
	if (!rc && rename(tmp, dir))
		rc = qs_fail(err, errno, "%s: cannot rename into place: %s", dir, strerror(errno));
	if (rc)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmp);
	free(buf);
	qs_sha256_free(h);
	qs_reader_free(r);
	return rc;
}
