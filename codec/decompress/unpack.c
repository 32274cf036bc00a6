/* unpack.c - write a view into a new directory, renamed into place. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/sha256.h"
#include "container.h"

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
		int rc = mkdir(path, 0777);
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

/* The umask, read without changing it (umask(2) would, for every thread). */
static mode_t process_umask(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned m = 022;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	if (f)
		fclose(f);
	return (mode_t)m;
}

int qs_unpack(qs_container *c, qs_view view, const char *dir, const qs_progress *progress, qs_error *err)
{
	struct stat st;
	if ((unsigned)view >= QS_N_VIEWS || !c->dir[view])
		return (unsigned)view < QS_N_VIEWS && c->low_why[view] ? qs_fail(err, EINVAL, "%s", c->low_why[view])
			: qs_fail(err, EINVAL, "%s: the %s view was not opened (qs_open_ex with QS_OPEN_INT)", c->path,
				  (unsigned)view < QS_N_VIEWS ? qs_view_names[view] : "?");
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
	chmod(tmp, 0777 & ~process_umask());   /* mkdtemp makes it 0700: like mkdir(1) instead */
	qs_reader *r = qs_reader_new(c, err);
	qs_sha256 *h = qs_sha256_new();
	uint8_t *buf = malloc(QS_IO_BLOCK);
	int rc = !r ? -1 : h && buf ? 0 : qs_fail(err, ENOMEM, "out of memory");
	qs_ticker tk = { progress, 0, qs_views_bytes(c, view, view), qs_now() };
	for (size_t i = 0; i < c->ix->n_files[view] && !rc; i++) {
		const qs_vfile *f = &c->ix->files[view][i];
		char *path = NULL;
		if (asprintf(&path, "%s/%s", tmp, f->path) < 0) {
			rc = qs_fail(err, ENOMEM, "out of memory");
			break;
		}
		int fd = mkdirs(path) ? -1 : open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0) {
			rc = qs_fail(err, errno, "%s: %s", path, strerror(errno));
		} else {
			uint8_t got[32];
			int s = qs_stream_file(c, r, view, i, buf, h, fd_sink, &fd, &tk, got, err);
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
	if (!rc)
		qs_tick_end(&tk);
	if (rc)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmp);
	free(buf);
	qs_sha256_free(h);
	qs_reader_free(r);
	return rc;
}
