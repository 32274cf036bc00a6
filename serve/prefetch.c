/* prefetch.c - the prefetch workers and their queue; see prefetch.h. */
#include "prefetch.h"

#include <stdlib.h>

#include "fetch.h"

#define QUEUE 256

typedef struct job { qsv_version *v; int view; size_t file; qs_piece p; } job;

struct qsv_prefetcher {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job q[QUEUE];
	size_t head, count;
	int stop;
	pthread_t *tid;
	unsigned n;
};

static void *worker(void *arg)
{
	qsv_prefetcher *pf = arg;
	pthread_mutex_lock(&pf->mu);
	for (;;) {
		while (!pf->stop && !pf->count)
			pthread_cond_wait(&pf->cv, &pf->mu);
		if (pf->stop)
			break;
		job j = pf->q[pf->head];
		pf->head = (pf->head + 1) % QUEUE;
		pf->count--;
		pthread_mutex_unlock(&pf->mu);
		qsv_fetch_ahead(j.v, j.view, j.file, &j.p);
		qsv_version_unref(j.v);
		pthread_mutex_lock(&pf->mu);
	}
	pthread_mutex_unlock(&pf->mu);
	return NULL;
}

qsv_prefetcher *qsv_prefetch_start(qsv_server *s, unsigned workers)
{
	(void)s;
	qsv_prefetcher *pf = calloc(1, sizeof(*pf));
	if (!pf || !(pf->tid = calloc(workers ? workers : 1, sizeof(pthread_t)))) {
		free(pf);
		return NULL;
	}
	pthread_mutex_init(&pf->mu, NULL);
	pthread_cond_init(&pf->cv, NULL);
	for (; pf->n < workers; pf->n++)
		if (pthread_create(&pf->tid[pf->n], NULL, worker, pf)) {
			qsv_prefetch_stop(pf);
			return NULL;
		}
	return pf;
}

void qsv_prefetch_stop(qsv_prefetcher *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->stop = 1;
	pthread_cond_broadcast(&pf->cv);
	pthread_mutex_unlock(&pf->mu);
	for (unsigned i = 0; i < pf->n; i++)
		pthread_join(pf->tid[i], NULL);
	for (; pf->count; pf->count--, pf->head = (pf->head + 1) % QUEUE)
		qsv_version_unref(pf->q[pf->head].v);
	pthread_mutex_destroy(&pf->mu);
	pthread_cond_destroy(&pf->cv);
	free(pf->tid);
	free(pf);
}

int qsv_prefetch_enqueue(qsv_prefetcher *pf, qsv_version *v, int view, size_t file, const qs_piece *p)
{
	int queued = 0;
	pthread_mutex_lock(&pf->mu);
	if (pf->count < QUEUE && !pf->stop && pf->n) {
		qsv_version_ref(v);
		pf->q[(pf->head + pf->count++) % QUEUE] = (job){ v, view, file, *p };
		pthread_cond_signal(&pf->cv);
		queued = 1;
	}
	pthread_mutex_unlock(&pf->mu);
	return queued;
}
