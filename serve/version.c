/* version.c - opening container versions and pooling their readers. */
#include "version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IDLE_READERS 2      /* per version */
#define QSV_MAX_IDLE_READERS 8  /* all versions: each holds ~1.6 MiB of tables, so
				 * 600 containers do not keep 600 of them */

qsv_version *qsv_version_open(qsv_server *s, const char *name, const char *path, const struct stat *st,
			      qs_error *err)
{
	qs_container *c = qs_open_ex(path, QS_OPEN_SINGLE_FILE | s->low_views, err);
	if (!c)
		return NULL;
	qsv_version *v = calloc(1, sizeof(*v));
	if (!v || !(v->name = strdup(name)) || !(v->path = strdup(path))) {
		qs_close(c);
		if (v)
			free(v->name);
		free(v);
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
		err->code = ENOMEM;
		return NULL;
	}
	v->srv = s;
	v->c = c;
	v->st = *st;
	v->gen = atomic_fetch_add(&s->next_gen, 1);
	v->id = ((uint64_t)st->st_dev * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)st->st_ino * 0xC2B2AE3D27D4EB4Full)
		^ ((uint64_t)st->st_mtim.tv_sec * 1000000007ull + (uint64_t)st->st_mtim.tv_nsec) ^ (uint64_t)st->st_size;
	for (int w = 0; w < QS_N_VIEWS; w++) {
		const char *why;
		if (qs_view_missing(c, (qs_view)w))
			qsv_logf(s->log, QSV_WARN, "no %s view: %s", qs_view_name((qs_view)w), qs_view_missing(c, (qs_view)w));
		if (qs_view_dir(c, (qs_view)w) && qs_single_file(c, (qs_view)w, &why) < 0 && why)
			qsv_logf(s->log, QSV_WARN, "%s: no single-file %s view: %s", path, qs_view_dir(c, (qs_view)w), why);
	}
	pthread_mutex_init(&v->mu, NULL);
	v->refs = 1;
	return v;
}

void qsv_version_ref(qsv_version *v)
{
	pthread_mutex_lock(&v->mu);
	v->refs++;
	pthread_mutex_unlock(&v->mu);
}

void qsv_version_unref(qsv_version *v)
{
	pthread_mutex_lock(&v->mu);
	int left = --v->refs;
	pthread_mutex_unlock(&v->mu);
	if (left)
		return;
	qsv_cache_forget_gen(v->srv->cache, v->gen);
	for (int i = 0; i < v->n_idle; i++)
		qs_reader_free(v->idle[i]);
	atomic_fetch_sub(&v->srv->idle_readers, v->n_idle);
	free(v->idle);
	qs_close(v->c);
	pthread_mutex_destroy(&v->mu);
	qsv_logf(v->srv->log, QSV_DEBUG, "%s: version closed", v->path);
	free(v->name);
	free(v->path);
	free(v);
}

qs_reader *qsv_version_reader(qsv_version *v, qs_error *err)
{
	qs_reader *r = NULL;
	pthread_mutex_lock(&v->mu);
	if (v->n_idle) {
		r = v->idle[--v->n_idle];
		atomic_fetch_sub(&v->srv->idle_readers, 1);
	}
	pthread_mutex_unlock(&v->mu);
	return r ? r : qs_reader_new(v->c, err);
}

void qsv_version_reader_done(qsv_version *v, qs_reader *r)
{
	pthread_mutex_lock(&v->mu);
	/* a place in the server-wide count is taken first, and given back when
	 * the reader is not kept after all */
	int counted = v->n_idle < MAX_IDLE_READERS;
	int keep = counted && atomic_fetch_add(&v->srv->idle_readers, 1) < QSV_MAX_IDLE_READERS;
	if (keep && !v->idle)
		v->idle = calloc(MAX_IDLE_READERS, sizeof(*v->idle));
	if (keep && v->idle) {
		v->idle[v->n_idle++] = r;
		r = NULL;
	} else if (counted) {
		atomic_fetch_sub(&v->srv->idle_readers, 1);
	}
	pthread_mutex_unlock(&v->mu);
	qs_reader_free(r);
}

int qsv_same_identity(const struct stat *a, const struct stat *b)
{
	/* owner and mode too: a chmod or chown of the container must reach the
	 * mount, which reports them (and the kernel enforces them) */
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
		&& a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
		&& a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid;
}
