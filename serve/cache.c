/* cache.c - hash table + LRU list under one mutex; see cache.h. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "qstore.h"

enum { E_LOADING, E_READY, E_FAILED };

struct qsv_entry {
	uint64_t gen, key;
	size_t size;
	uint8_t *data;
	int state, holds, prefetched, in_table;
	qsv_entry *hnext;               /* hash chain */
	qsv_entry *prev, *next;         /* LRU list: head = most recent */
};

/* Buffers of evicted entries, kept for the next entry of the same size
 * (chunks mostly share one size): a new entry then costs no mmap, no page
 * faults and no zeroing by the kernel.  Pooled bytes count against the
 * capacity like cached ones, so the memory bound is unchanged. */
#define POOL_CLASSES 4
#define POOL_MIN (64u << 10)
typedef struct pool {
	size_t size;
	uint8_t **bufs;
	size_t n, cap;
} pool;

struct qsv_cache {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	qsv_entry **buckets;
	size_t nbuckets;
	qsv_entry *head, *tail;
	pool pools[POOL_CLASSES];
	uint64_t pooled;                /* bytes in pools */
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

uint64_t qsv_cache_capacity(const qsv_cache *c)
{
	return c->st.capacity;
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

static pool *pool_for(qsv_cache *c, size_t size, int make)
{
	pool *spare = NULL;
	for (int i = 0; i < POOL_CLASSES; i++) {
		if (c->pools[i].size == size)
			return &c->pools[i];
		if (!c->pools[i].n && !spare)
			spare = &c->pools[i];
	}
	if (!make || !spare)
		return NULL;
	spare->size = size;   /* an empty class takes the new size */
	return spare;
}

/* Keep BUF for reuse if there is room under the capacity; else free it. */
static void release_buf(qsv_cache *c, uint8_t *buf, size_t size)
{
	pool *p = size >= POOL_MIN && c->st.used + c->pooled + size <= c->st.capacity ? pool_for(c, size, 1) : NULL;
	if (p && !qs_grow((void **)&p->bufs, &p->cap, p->n + 1, sizeof(*p->bufs))) {
		p->bufs[p->n++] = buf;
		c->pooled += size;
		return;
	}
	free(buf);
}

static uint8_t *take_buf(qsv_cache *c, size_t size)
{
	pool *p = pool_for(c, size, 0);
	if (p && p->n) {
		c->pooled -= size;
		return p->bufs[--p->n];
	}
	return malloc(size ? size : 1);
}

/* Give pooled buffers back until NEED more bytes fit under the capacity. */
static void trim_pools(qsv_cache *c, size_t need)
{
	for (int i = 0; i < POOL_CLASSES && c->st.used + c->pooled + need > c->st.capacity; i++)
		while (c->pools[i].n && c->st.used + c->pooled + need > c->st.capacity) {
			free(c->pools[i].bufs[--c->pools[i].n]);
			c->pooled -= c->pools[i].size;
		}
}

static void destroy(qsv_cache *c, qsv_entry *e)
{
	c->st.used -= e->size;
	release_buf(c, e->data, e->size);
	free(e);
}

/* make room for `need` bytes by dropping unheld entries, oldest first */
static void evict(qsv_cache *c, size_t need)
{
	qsv_entry *e = c->tail;
	trim_pools(c, need);
	while (e && c->st.used + need > c->st.capacity) {
		qsv_entry *prev = e->prev;
		if (!e->holds && e->state != E_LOADING) {
			table_remove(c, e);
			destroy(c, e);
			c->st.evictions++;
		}
		e = prev;
	}
	/* what evicting just pooled may be NEED's room: unless a pooled buffer
	 * of NEED's size will be taken for it, give them back */
	pool *p = pool_for(c, need, 0);
	trim_pools(c, p && p->n ? 0 : need);
}

static qsv_entry *lookup(qsv_cache *c, uint64_t gen, uint64_t key)
{
	qsv_entry *e = c->buckets[slot(c, gen, key)];
	while (e && (e->gen != gen || e->key != key))
		e = e->hnext;
	return e;
}

/* Wait (c->mu held) until E, which is LOADING, is published: 0, or -1 if
 * its loader failed (E is then gone unless others hold it). */
static int wait_loaded(qsv_cache *c, qsv_entry *e)
{
	c->st.waits++;
	e->holds++;
	while (e->state == E_LOADING)
		pthread_cond_wait(&c->cv, &c->mu);
	e->holds--;
	if (e->state != E_FAILED)
		return 0;
	if (!e->holds && !e->in_table)
		destroy(c, e);
	return -1;
}

qsv_entry *qsv_cache_get(qsv_cache *c, uint64_t gen, uint64_t key, size_t size, int mode, int *load)
{
	*load = 0;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		qsv_entry *e = lookup(c, gen, key);
		if (!e)
			break;
		if (mode == QSV_GET_PREFETCH || (mode == QSV_GET_TRY && e->state == E_LOADING)) {
			pthread_mutex_unlock(&c->mu);
			errno = EAGAIN;
			return NULL;
		}
		if (e->state == E_LOADING && wait_loaded(c, e)) {
			pthread_mutex_unlock(&c->mu);
			errno = EIO;
			return NULL;
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
	uint8_t *data = e ? take_buf(c, size) : NULL;
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

int qsv_cache_loading(qsv_cache *c, uint64_t gen, uint64_t key, int wait)
{
	pthread_mutex_lock(&c->mu);
	qsv_entry *e = lookup(c, gen, key);
	int loading = e && e->state == E_LOADING;
	if (loading && wait) {
		wait_loaded(c, e);
		loading = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return loading;
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
	s->pooled = c->pooled;
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
	for (int i = 0; i < POOL_CLASSES; i++) {
		while (c->pools[i].n)
			free(c->pools[i].bufs[--c->pools[i].n]);
		free(c->pools[i].bufs);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
