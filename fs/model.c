/* model.c - opening container versions and pooling their readers. */
#include "model.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

#define MAX_IDLE_READERS 2   /* each holds about 1.5 MiB of decode scratch */

static atomic_uint_fast64_t next_gen = 1;

qfs_model *qfs_model_open(const char *name, const char *path, const struct stat *st, qs_error *err)
{
	qs_container *c = qs_open(path, err);
	if (!c)
		return NULL;
	qfs_model *m = calloc(1, sizeof(*m));
	if (!m || !(m->name = strdup(name)) || !(m->path = strdup(path))) {
		qs_close(c);
		if (m) { free(m->name); free(m); }
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory", path);
		return NULL;
	}
	m->c = c;
	m->st = *st;
	m->gen = atomic_fetch_add(&next_gen, 1);
	m->id = ((uint64_t)st->st_dev * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)st->st_ino * 0xC2B2AE3D27D4EB4Full)
		^ ((uint64_t)st->st_mtim.tv_sec * 1000000007ull + (uint64_t)st->st_mtim.tv_nsec) ^ (uint64_t)st->st_size;
	qs_summary s;
	qs_container_summary(c, &s);
	m->dtype_dir = !strcmp(s.source_dtype, "F16") ? "fp16" : !strcmp(s.source_dtype, "F32") ? "fp32" : "bf16";
	snprintf(m->single_name[QS_VIEW_HIGH], sizeof(m->single_name[0]), "model-%s.safetensors", m->dtype_dir);
	snprintf(m->single_name[QS_VIEW_INT8], sizeof(m->single_name[0]), "model-int8.safetensors");
	for (int v = 0; v < 2; v++) {
		/* none when the model has no weight files, or headers that cannot
		 * be merged; the directories work regardless */
		err->msg[0] = 0;
		m->single[v] = qs_add_merged(c, (qs_view)v, m->single_name[v], err);
		if (m->single[v] < 0 && err->msg[0])
			qfs_log(QFS_WARN, "%s: no single-file %s view: %s", path, v ? "int8" : m->dtype_dir, err->msg);
	}
	pthread_mutex_init(&m->mu, NULL);
	m->refs = 1;
	return m;
}

void qfs_model_ref(qfs_model *m)
{
	pthread_mutex_lock(&m->mu);
	m->refs++;
	pthread_mutex_unlock(&m->mu);
}

void qfs_model_unref(qfs_model *m)
{
	pthread_mutex_lock(&m->mu);
	int left = --m->refs;
	pthread_mutex_unlock(&m->mu);
	if (left)
		return;
	qfs_cache_forget_gen(qfs_daemon()->cache, m->gen);
	for (int i = 0; i < m->n_idle; i++)
		qs_reader_free(m->idle[i]);
	free(m->idle);
	qs_close(m->c);
	pthread_mutex_destroy(&m->mu);
	qfs_log(QFS_DEBUG, "%s: version closed", m->path);
	free(m->name);
	free(m->path);
	free(m);
}

qs_reader *qfs_model_reader(qfs_model *m)
{
	qs_reader *r = NULL;
	pthread_mutex_lock(&m->mu);
	if (m->n_idle)
		r = m->idle[--m->n_idle];
	pthread_mutex_unlock(&m->mu);
	return r ? r : qs_reader_new(m->c);
}

void qfs_model_reader_done(qfs_model *m, qs_reader *r)
{
	pthread_mutex_lock(&m->mu);
	if (m->n_idle < MAX_IDLE_READERS) {
		if (!m->idle)
			m->idle = calloc(MAX_IDLE_READERS, sizeof(*m->idle));
		if (m->idle) {
			m->idle[m->n_idle++] = r;
			r = NULL;
		}
	}
	pthread_mutex_unlock(&m->mu);
	qs_reader_free(r);
}
