/* handles.c - the registry of open files; see handles.h. */
#include "handles.h"

#include <stdlib.h>

void qfs_handles_init(qfs_handles *hs)
{
	pthread_mutex_init(&hs->mu, NULL);
	hs->head = NULL;
}

qfs_handle *qfs_handle_new(qfs_handles *hs)
{
	qfs_handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	atomic_init(&h->refs, 1);
	pthread_mutex_lock(&hs->mu);
	h->next = hs->head;
	if (hs->head)
		hs->head->prev = h;
	hs->head = h;
	pthread_mutex_unlock(&hs->mu);
	return h;
}

static void handle_free(qfs_handles *hs, qfs_handle *h)
{
	pthread_mutex_lock(&hs->mu);
	if (h->prev)
		h->prev->next = h->next;
	else
		hs->head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&hs->mu);
	if (h->has_file)
		qsv_file_close(&h->f);
	free(h->text);
	free(h);
}

qfs_handle *qfs_handle_hold(qfs_handle *h)
{
	atomic_fetch_add(&h->refs, 1);
	return h;
}

void qfs_handle_put(qfs_handles *hs, qfs_handle *h)
{
	if (atomic_fetch_sub(&h->refs, 1) == 1)
		handle_free(hs, h);
}

void qfs_handles_destroy(qfs_handles *hs)
{
	while (hs->head)   /* the session is over: nothing holds them */
		handle_free(hs, hs->head);
	pthread_mutex_destroy(&hs->mu);
}
