/* plan_check.c - what must hold of the sources before anything is planned:
 * every safetensors header parses, no tensor name appears twice across
 * shards, and every shard index names shards that exist and hold the tensor. */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int parse_headers(qs_plan *p, qs_error *err)
{
	for (size_t i = 0; i < p->n_files; i++) {
		qs_srcfile *f = &p->files[i];
		uint8_t first[8];
		uint64_t n;
		if (!f->is_st)
			continue;
		if (f->size >= 8 && qs_pread_full(f->fd, first, 8, 0))
			return qs_fail(err, EIO, "%s: read error", f->abs);
		if (qs_st_header_len(f->abs, first, f->size, &n, err))
			return -1;
		uint8_t *js = malloc(n);
		if (!js)
			return qs_fail(err, ENOMEM, "%s: out of memory for a %llu-byte header", f->abs, (unsigned long long)n);
		int rc = qs_pread_full(f->fd, js, n, 8) ? qs_fail(err, EIO, "%s: read error", f->abs)
			: qs_st_parse(f->abs, js, n, f->size, &f->st, err);
		free(js);
		if (rc)
			return -1;
	}
	return 0;
}

typedef struct { const char *name; const char *file; } named;
static int cmp_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

static int check_names(qs_plan *p, qs_error *err)
{
	size_t n = 0, k = 0;
	for (size_t i = 0; i < p->n_files; i++)
		n += p->files[i].st.n;
	named *all = malloc((n ? n : 1) * sizeof(named));
	if (!all)
		return qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < p->n_files; i++)
		for (size_t j = 0; j < p->files[i].st.n; j++)
			all[k++] = (named){ p->files[i].st.t[j].name, p->files[i].abs };
	qsort(all, n, sizeof(named), cmp_named);
	for (size_t i = 0; i + 1 < n; i++)
		if (!strcmp(all[i].name, all[i + 1].name)) {
			int rc = qs_fail(err, EINVAL, "tensor '%s' appears in both %s and %s", all[i].name,
					 all[i].file, all[i + 1].file);
			free(all);
			return rc;
		}
	free(all);
	return 0;
}

qs_srcfile *qs_plan_find_file(qs_plan *p, const char *rel)
{
	qs_srcfile key = { .rel = (char *)rel };
	return bsearch(&key, p->files, p->n_files, sizeof(qs_srcfile), qs_plan_cmp_rel);   /* files are sorted */
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is NAME a tensor of F?  Binary search over F's names, sorted once. */
int qs_plan_has_tensor(qs_srcfile *f, const char *name)
{
	if (!f->names && f->st.n) {
		f->names = malloc(f->st.n * sizeof(char *));
		if (!f->names)
			return 0;
		for (size_t i = 0; i < f->st.n; i++)
			f->names[i] = f->st.t[i].name;
		qsort(f->names, f->st.n, sizeof(char *), cmp_name_ptr);
	}
	return f->st.n && bsearch(&name, f->names, f->st.n, sizeof(char *), cmp_name_ptr) != NULL;
}

json_t *qs_plan_load_json(const qs_plan *p, const qs_srcfile *f, qs_error *err)
{
	char *buf = malloc(f->size + 1);
	json_error_t je;
	if (!buf) {
		qs_fail(err, ENOMEM, "%s: out of memory", f->abs);
		return NULL;
	}
	int fd = qs_plan_open(p, f, err);
	if (fd < 0 || qs_pread_full(fd, buf, f->size, 0)) {
		if (fd >= 0)
			qs_fail(err, EIO, "%s: read error", f->abs);
		qs_plan_done(f, fd);
		free(buf);
		return NULL;
	}
	qs_plan_done(f, fd);
	json_t *j = json_loadb(buf, f->size, 0, &je);
	free(buf);
	if (!j)
		qs_fail(err, EINVAL, "%s: not valid JSON: %s (line %d)", f->abs, je.text, je.line);
	return j;
}

/* The directory part of a relative path ("" for the top level). */
char *qs_plan_dir_of(const char *rel)
{
	const char *s = strrchr(rel, '/');
	return strndup(rel, s ? (size_t)(s - rel + 1) : 0);
}

static int check_index(qs_plan *p, qs_srcfile *f, qs_error *err)
{
	json_t *j = qs_plan_load_json(p, f, err), *wm;
	if (!j)
		return -1;
	int rc = 0;
	const char *name;
	json_t *v;
	if (!json_is_object(j) || !json_is_object(wm = json_object_get(j, "weight_map"))) {
		json_decref(j);
		return qs_fail(err, EINVAL, "%s: shard index has no weight_map object", f->abs);
	}
	char *dir = qs_plan_dir_of(f->rel);
	json_object_foreach(wm, name, v) {
		const char *shard = json_is_string(v) ? json_string_value(v) : NULL;
		if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, "..") || !strcmp(shard, ".")) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s' maps to an invalid shard name", f->abs, name);
			break;
		}
		char *rel = NULL;
		if (asprintf(&rel, "%s%s", dir, shard) < 0) {
			rc = qs_fail(err, ENOMEM, "out of memory");
			break;
		}
		qs_srcfile *s = qs_plan_find_file(p, rel);
		free(rel);
		if (!s || !s->is_st) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s' maps to shard '%s', which is missing", f->abs, name, shard);
			break;
		}
		if (!qs_plan_has_tensor(s, name)) {
			rc = qs_fail(err, EINVAL, "%s: tensor '%s' maps to shard '%s', which does not contain it",
				     f->abs, name, shard);
			break;
		}
	}
	free(dir);
	json_decref(j);
	return rc;
}
int qs_plan_check_sources(qs_plan *p, qs_error *err)
{
	if (parse_headers(p, err) || check_names(p, err))
		return -1;
	for (size_t i = 0; i < p->n_files; i++)
		if (qs_ends_with(p->files[i].rel, ".safetensors.index.json") && check_index(p, &p->files[i], err))
			return -1;
	return 0;
}
