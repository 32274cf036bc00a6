/* cache.c - hash table + LRU list under one mutex; see cache.h. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { E_LOADING, E_READY, E_FAILED };

struct qfs_entry {
	uint64_t gen, key;
	size_t size;
	uint8_t *data;
	int state, holds, prefetched, in_table;
	qfs_entry *hnext;               /* hash chain */
	qfs_entry *prev, *next;         /* LRU list: head = most recent */
};

struct qfs_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	qfs_entry **buckets;
	size_t nbuckets;
	qfs_entry *head, *tail;
	qfs_cache_stats st;
};

static size_t slot(const qfs_cache *c, uint64_t gen, uint64_t key)
{
	uint64_t h = (key ^ (gen * 0x9E3779B97F4A7C15ull)) * 0xff51afd7ed558ccdull;
	return (size_t)(h >> 32) & (c->nbuckets - 1);
}

qfs_cache *qfs_cache_new(uint64_t capacity)
{
	qfs_cache *c = calloc(1, sizeof(*c));
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

static void lru_unlink(qfs_cache *c, qfs_entry *e)
{
	if (e->prev) e->prev->next = e->next; else c->head = e->next;
	if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_front(qfs_cache *c, qfs_entry *e)
{
	e->next = c->head;
	e->prev = NULL;
	if (c->head) c->head->prev = e;
	c->head = e;
	if (!c->tail) c->tail = e;
}

static void table_remove(qfs_cache *c, qfs_entry *e)
{
	qfs_entry **p = &c->buckets[slot(c, e->gen, e->key)];
	while (*p && *p != e)
		p = &(*p)->hnext;
	if (*p)
		*p = e->hnext;
	e->in_table = 0;
	lru_unlink(c, e);
	c->st.entries--;
}

static void destroy(qfs_cache *c, qfs_entry *e)
{
	c->st.used -= e->size;
	free(e->data);
	free(e);
}

/* make room for `need` bytes by dropping unheld entries, oldest first */
static void evict(qfs_cache *c, size_t need)
{
	qfs_entry *e = c->tail;
	while (e && c->st.used + need > c->st.capacity) {
		qfs_entry *prev = e->prev;
		if (!e->holds && e->state != E_LOADING) {
			table_remove(c, e);
			destroy(c, e);
			c->st.evictions++;
		}
		e = prev;
	}
}

qfs_entry *qfs_cache_get(qfs_cache *c, uint64_t gen, uint64_t key, size_t size, int mode, int *load)
{
	*load = 0;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		qfs_entry *e = c->buckets[slot(c, gen, key)];
		while (e && (e->gen != gen || e->key != key))
			e = e->hnext;
		if (!e)
			break;
		if (mode == QFS_GET_PREFETCH || (mode == QFS_GET_TRY && e->state == E_LOADING)) {
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
	qfs_entry *e = calloc(1, sizeof(*e));
	uint8_t *data = e ? malloc(size ? size : 1) : NULL;
	if (!data) {
		free(e);
		pthread_mutex_unlock(&c->mu);
		errno = ENOMEM;
		return NULL;
	}
	*e = (qfs_entry){ .gen = gen, .key = key, .size = size, .data = data, .state = E_LOADING, .holds = 1,
			  .prefetched = mode == QFS_GET_PREFETCH, .in_table = 1 };
	size_t s = slot(c, gen, key);
	e->hnext = c->buckets[s];
	c->buckets[s] = e;
	lru_front(c, e);
	c->st.used += size;
	c->st.entries++;
	if (mode == QFS_GET_PREFETCH)
		c->st.prefetch_issued++;
	else
		c->st.misses++;
	*load = 1;
	pthread_mutex_unlock(&c->mu);
	return e;
}

void qfs_cache_publish(qfs_cache *c, qfs_entry *e, int ok)
{
	pthread_mutex_lock(&c->mu);
	e->state = ok ? E_READY : E_FAILED;
	if (!ok && e->in_table)
		table_remove(c, e);   /* a later read tries again */
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void qfs_cache_put(qfs_cache *c, qfs_entry *e)
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

uint8_t *qfs_entry_data(qfs_entry *e) { return e->data; }
size_t qfs_entry_size(const qfs_entry *e) { return e->size; }

void qfs_cache_forget_gen(qfs_cache *c, uint64_t gen)
{
	pthread_mutex_lock(&c->mu);
	for (qfs_entry *e = c->head, *next; e; e = next) {
		next = e->next;
		if (e->gen != gen || e->state == E_LOADING)
			continue;
		table_remove(c, e);
		if (!e->holds)
			destroy(c, e);
	}
	pthread_mutex_unlock(&c->mu);
}

void qfs_cache_get_stats(qfs_cache *c, qfs_cache_stats *s)
{
	pthread_mutex_lock(&c->mu);
	*s = c->st;
	pthread_mutex_unlock(&c->mu);
}

void qfs_cache_free(qfs_cache *c)
{
	if (!c)
		return;
	for (qfs_entry *e = c->head, *next; e; e = next) {
		next = e->next;
		free(e->data);
		free(e);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
