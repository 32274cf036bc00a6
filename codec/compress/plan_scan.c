/* plan_scan.c - the source files of a pack: a model directory (walked,
 * sorted by path so that the container does not depend on readdir order) or
 * one .safetensors file; each opened once. */
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

int qs_plan_scan(qs_plan *p, const char *src, qs_error *err)
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
	for (size_t i = 0; i < p->n_files; i++) {
		qs_srcfile *f = &p->files[i];
		p->source_bytes += f->size;
		f->is_st = qs_ends_with(f->rel, ".safetensors");
		f->fd = open(f->abs, O_RDONLY | O_CLOEXEC);
		if (f->fd < 0)
			return qs_fail(err, errno, "%s: %s", f->abs, strerror(errno));
	}
	return 0;
}
