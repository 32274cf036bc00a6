/* cache.c - hash table + LRU list under one mutex; see cache.h. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { E_LOADING, E_READY, E_FAILED };

struct qsv_entry {
	uint64_t gen, key;
	size_t size;
	uint8_t *data;
	int state, holds, prefetched, in_table;
	qsv_entry *hnext;               /* hash chain */
	qsv_entry *prev, *next;         /* LRU list: head = most recent */
};

struct qsv_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	qsv_entry **buckets;
	size_t nbuckets;
	qsv_entry *head, *tail;
	qsv_cache_stats st;
};

static size_t slot(const qsv_cache *c, uint64_t gen, uint64_t key)
{
	uint64_t h = (key ^ (gen * 0x9E3779B97F4A7C15ull)) * 0xff51afd7ed558ccdull;
	return (size_t)(h >> 32) & (c->nbuckets - 1);
}

qsv_cache *qsv_cache_new(uint64_t capacity)
{
	qsv_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->nbuckets = 1 << 16;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->st.capacity = capacity;
	return c;
}

static void lru_unlink(qsv_cache *c, qsv_entry *e)
{
	if (e->prev) e->prev->next = e->next; else c->head = e->next;
	if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(qsv_cache *c, qsv_entry *e)
{
	e->next = c->head;
	e->prev = NULL;
	if (c->head) c->head->prev = e;
	c->head = e;
	if (!c->tail) c->tail = e;
}

static void table_remove(qsv_cache *c, qsv_entry *e)
{
	qsv_entry **p = &c->buckets[slot(c, e->gen, e->key)];
	while (*p && *p != e)
		p = &(*p)->hnext;
	if (*p)
		*p = e->hnext;
	e->in_table = 0;
	lru_unlink(c, e);
	c->st.entries--;
}

static void destroy(qsv_cache *c, qsv_entry *e)
{
	c->st.used -= e->size;
	free(e->data);
	free(e);
}

/* make room for `need` bytes by dropping unheld entries, oldest first */
static void evict(qsv_cache *c, size_t need)
{
	qsv_entry *e = c->tail;
	while (e && c->st.used + need > c->st.capacity) {
		qsv_entry *prev = e->prev;
		if (!e->holds && e->state != E_LOADING) {
			table_remove(c, e);
			destroy(c, e);
			c->st.evictions++;
		}
		e = prev;
	}
}

qsv_entry *qsv_cache_get(qsv_cache *c, uint64_t gen, uint64_t key, size_t size, int mode, int *load)
{
	*load = 0;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		qsv_entry *e = c->buckets[slot(c, gen, key)];
		while (e && (e->gen != gen || e->key != key))
			e = e->hnext;
		if (!e)
			break;
		if (mode == QSV_GET_PREFETCH || (mode == QSV_GET_TRY && e->state == E_LOADING)) {
			pthread_mutex_unlock(&c->mu);
			errno = EAGAIN;
			return NULL;
		}
		if (e->state == E_LOADING) {
			c->st.waits++;
			e->holds++;
			while (e->state == E_LOADING)
				pthread_cond_wait(&c->cv, &c->mu);
			e->holds--;
			if (e->state == E_FAILED) {
				if (!e->holds && !e->in_table)
					destroy(c, e);
				pthread_mutex_unlock(&c->mu);
				errno = EIO;
				return NULL;
			}
		}
		e->holds++;
		c->st.hits++;
		if (e->prefetched) {
			c->st.prefetch_used++;
			e->prefetched = 0;
		}
		lru_unlink(c, e);
		lru_front(c, e);
		pthread_mutex_unlock(&c->mu);
		return e;
	}
	evict(c, size);
	qsv_entry *e = calloc(1, sizeof(*e));
	uint8_t *data = e ? malloc(size ? size : 1) : NULL;
	if (!data) {
		free(e);
		pthread_mutex_unlock(&c->mu);
		errno = ENOMEM;
		return NULL;
	}
	*e = (qsv_entry){ .gen = gen, .key = key, .size = size, .data = data, .state = E_LOADING, .holds = 1,
			  .prefetched = mode == QSV_GET_PREFETCH, .in_table = 1 };
	size_t s = slot(c, gen, key);
	e->hnext = c->buckets[s];
	c->buckets[s] = e;
	lru_front(c, e);
	c->st.used += size;
	c->st.entries++;
	if (mode == QSV_GET_PREFETCH)
		c->st.prefetch_issued++;
	else
		c->st.misses++;
	*load = 1;
	pthread_mutex_unlock(&c->mu);
	return e;
}

void qsv_cache_publish(qsv_cache *c, qsv_entry *e, int ok)
{
	pthread_mutex_lock(&c->mu);
	e->state = ok ? E_READY : E_FAILED;
	if (!ok && e->in_table)
		table_remove(c, e);   /* a later read tries again */
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void qsv_cache_put(qsv_cache *c, qsv_entry *e)
{
	pthread_mutex_lock(&c->mu);
	if (--e->holds == 0) {
		if (!e->in_table)
			destroy(c, e);
		else if (c->st.used > c->st.capacity)
			evict(c, 0);
	}
	pthread_mutex_unlock(&c->mu);
}

uint8_t *qsv_entry_data(qsv_entry *e) { return e->data; }
size_t qsv_entry_size(const qsv_entry *e) { return e->size; }

void qsv_cache_forget_gen(qsv_cache *c, uint64_t gen)
{
	pthread_mutex_lock(&c->mu);
	for (qsv_entry *e = c->head, *next; e; e = next) {
		next = e->next;
		if (e->gen != gen || e->state == E_LOADING)
			continue;
		table_remove(c, e);
		if (!e->holds)
			destroy(c, e);
	}
	pthread_mutex_unlock(&c->mu);
}

void qsv_cache_get_stats(qsv_cache *c, qsv_cache_stats *s)
{
	pthread_mutex_lock(&c->mu);
	*s = c->st;
	pthread_mutex_unlock(&c->mu);
}

void qsv_cache_free(qsv_cache *c)
{
	if (!c)
		return;
	for (qsv_entry *e = c->head, *next; e; e = next) {
		next = e->next;
		free(e->data);
		free(e);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
