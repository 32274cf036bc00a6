/* plan_scan.c - the source files of a pack: a model directory (walked,
 * sorted by path so that the container does not depend on readdir order) or
 * one .safetensors file.  Links must stay inside the model's root; every file
 * is checked to be inside it again on the descriptor it is read through, and
 * to be unchanged (size, mtime, identity) before the container is committed.
 * Safetensors files stay open; the others are opened when read. */
#include "plan_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int qs_plan_cmp_rel(const void *a, const void *b)
{
	return strcmp(((const qs_srcfile *)a)->rel, ((const qs_srcfile *)b)->rel);
}

static int add_file(qs_plan *p, size_t *cap, const char *rel, const char *abs, uint64_t size, qs_error *err)
{
	if (qs_grow((void **)&p->files, cap, p->n_files + 1, sizeof(qs_srcfile)))
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

/* A symbolic link is followed only when what it names lies inside the
 * model's root (plan.h): the HF cache's snapshot links into ../../blobs/
 * are taken, a tokenizer.json -> /etc/shadow is not. */
static int link_ok(const qs_plan *p, const char *abs, qs_error *err)
{
	char *real = realpath(abs, NULL);
	if (!real)
		return qs_fail(err, errno, "%s: %s", abs, strerror(errno));
	int ok = qs_within(real, p->root);
	if (!ok)
		qs_fail(err, EPERM, "%s: symbolic link to %s, outside the model directory %s: refused", abs, real,
			p->root);
	free(real);
	return ok ? 0 : -1;
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
		int is_link = 0;
		if (asprintf(&a, "%s/%s", abs, de->d_name) < 0
		    || asprintf(&r, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
			rc = qs_fail(err, ENOMEM, "out of memory");
		} else if (lstat(a, &st) || ((is_link = S_ISLNK(st.st_mode)) && stat(a, &st))) {
			rc = qs_fail(err, errno, "%s: %s", a, strerror(errno));
		} else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			rc = qs_fail(err, EINVAL, "%s: not a regular file or directory", a);
		} else if (!(rc = is_link ? link_ok(p, a, err) : 0)) {   /* the rest lies under a checked directory */
			rc = S_ISDIR(st.st_mode) ? walk(p, cap, a, r, depth + 1, err)
				: add_file(p, cap, r, a, (uint64_t)st.st_size, err);
		}
		free(a);
		free(r);
	}
	closedir(d);
	return rc;
}

/* What links may point into: SRC itself, or for a snapshot of the HF cache
 * (REPO/snapshots/REV with REPO/blobs) the repository REPO. */
static char *model_root(const char *src, int is_dir)
{
	char *real = realpath(src, NULL), *slash;
	if (!real)
		return NULL;
	if (!is_dir && (slash = strrchr(real, '/')))
		*(slash == real ? slash + 1 : slash) = 0;
	char *rev = strrchr(real, '/');
	if (rev && rev > real) {
		*rev = 0;
		char *snap = strrchr(real, '/'), *blobs = NULL;
		struct stat st;
		if (snap && !strcmp(snap + 1, "snapshots")) {
			*snap = 0;
			if (asprintf(&blobs, "%s/blobs", *real ? real : "/") >= 0 && !stat(blobs, &st) && S_ISDIR(st.st_mode)) {
				free(blobs);
				return real;   /* the repository */
			}
			free(blobs);
			*snap = '/';
		}
		*rev = '/';
	}
	return real;
}

/* The file behind FD must still be inside the root when it is opened (a
 * link swapped in after the walk is caught here). */
static int opened_inside(const qs_plan *p, const qs_srcfile *f, int fd, qs_error *err)
{
	char proc[64], real[4096];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, real, sizeof(real) - 1);
	if (n < 0)
		return 0;   /* no /proc: the walk's check stands */
	real[n] = 0;
	return qs_within(real, p->root) ? 0
		: qs_fail(err, EPERM, "%s: now leads to %s, outside the model directory %s: refused", f->abs, real,
			  p->root);
}

int qs_plan_scan(qs_plan *p, const char *src, qs_error *err)
{
	struct stat st;
	size_t cap = 0;
	if (stat(src, &st))
		return qs_fail(err, errno, "%s: %s", src, strerror(errno));
	if (!(p->root = model_root(src, S_ISDIR(st.st_mode))))
		return qs_fail(err, errno, "%s: %s", src, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		if (walk(p, &cap, src, "", 0, err))
			return -1;
	} else if (S_ISREG(st.st_mode)) {
		const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
		if (!qs_ends_with(base, ".safetensors"))
			return qs_fail(err, EINVAL, "%s: expected a model directory or a .safetensors file", src);
		if (add_file(p, &cap, base, src, (uint64_t)st.st_size, err))
			return -1;
	} else {
		return qs_fail(err, EINVAL, "%s: not a directory or regular file", src);
	}
	if (!p->n_files)
		return qs_fail(err, EINVAL, "%s: empty directory, nothing to pack", src);
	qsort(p->files, p->n_files, sizeof(qs_srcfile), qs_plan_cmp_rel);
	size_t n_st = 0;
	for (size_t i = 0; i < p->n_files; i++) {
		qs_srcfile *f = &p->files[i];
		struct stat now;
		p->source_bytes += f->size;
		f->is_st = qs_ends_with(f->rel, ".safetensors");
		n_st += f->is_st;
		int fd = open(f->abs, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return qs_fail(err, errno, "%s: %s", f->abs, strerror(errno));
		if (opened_inside(p, f, fd, err) || (fstat(fd, &now) && qs_fail(err, errno, "%s: %s", f->abs, strerror(errno)))) {
			close(fd);
			return -1;
		}
		f->size = (uint64_t)now.st_size;
		f->mtime = now.st_mtim;
		f->dev = now.st_dev;
		f->ino = now.st_ino;
		if (f->is_st)
			f->fd = fd;
		else
			close(fd);
	}
	if (!n_st)   /* the INT8 view would be the same files, called INT8 */
		return qs_fail(err, EINVAL, "%s: no .safetensors file: nothing to quantise, nothing to pack", src);
	return 0;
}

static int same_file(const qs_srcfile *f, const struct stat *now, qs_error *err)
{
	if (now->st_dev != f->dev || now->st_ino != f->ino)
		return qs_fail(err, EIO, "%s: replaced by another file while packing: nothing written", f->abs);
	if ((uint64_t)now->st_size != f->size || now->st_mtim.tv_sec != f->mtime.tv_sec
	    || now->st_mtim.tv_nsec != f->mtime.tv_nsec)
		return qs_fail(err, EIO, "%s: changed while packing (%llu bytes, now %llu): nothing written", f->abs,
			       (unsigned long long)f->size, (unsigned long long)now->st_size);
	return 0;
}

int qs_plan_unchanged(const qs_plan *p, qs_error *err)
{
	for (size_t i = 0; i < p->n_files; i++) {
		const qs_srcfile *f = &p->files[i];
		struct stat now;
		if (f->fd >= 0 ? fstat(f->fd, &now) : stat(f->abs, &now))
			return qs_fail(err, errno, "%s: %s", f->abs, strerror(errno));
		if (same_file(f, &now, err))
			return -1;
	}
	return 0;
}

int qs_plan_open(const qs_plan *p, const qs_srcfile *f, qs_error *err)
{
	if (f->fd >= 0)
		return f->fd;
	struct stat now;
	int fd = open(f->abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qs_fail(err, errno, "%s: %s", f->abs, strerror(errno));
	if (opened_inside(p, f, fd, err) || (fstat(fd, &now) ? qs_fail(err, errno, "%s: %s", f->abs, strerror(errno))
					     : same_file(f, &now, err))) {
		close(fd);
		return -1;
	}
	return fd;
}

void qs_plan_done(const qs_srcfile *f, int fd)
{
	if (fd >= 0 && fd != f->fd)
		close(fd);
}
