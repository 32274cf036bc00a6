/* server.c - the serving layer's state, open files and reads; see server.h. */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fetch.h"
#include "prefetch.h"

uint64_t qsv_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

qsv_server *qsv_server_new(uint64_t cache_size, uint64_t prefetch_max, qsv_log *log)
{
	qsv_server *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->log = log;
	atomic_store(&s->prefetch_max, prefetch_max);
	atomic_store(&s->next_gen, 1);
	pthread_mutex_init(&s->seen_mu, NULL);
	qsv_budget_init(&s->pins, QSV_PIN_BUDGET);
	int spans = qsv_spans_init(&s->spans);
	int key = pthread_key_create(&s->io_key, qsv_io_free);
	s->cache = qsv_cache_new(cache_size);
	if (spans || key || !s->cache) {
		if (!key)
			pthread_key_delete(s->io_key);
		if (!spans)
			qsv_spans_destroy(&s->spans);
		qsv_cache_free(s->cache);
		qsv_budget_destroy(&s->pins);
		free(s);
		return NULL;
	}
	return s;
}

int qsv_server_start_workers(qsv_server *s, unsigned workers)
{
	if (s->pf || !workers)
		return 0;
	s->pf = qsv_prefetch_start(s, workers);
	return s->pf ? 0 : -1;
}

void qsv_server_free(qsv_server *s)
{
	if (!s)
		return;
	qsv_prefetch_stop(s->pf);
	/* threads that exited freed their io state; the caller's is freed here */
	void *mine = pthread_getspecific(s->io_key);
	if (mine) {
		pthread_setspecific(s->io_key, NULL);
		qsv_io_free(mine);
	}
	pthread_key_delete(s->io_key);
	qsv_cache_free(s->cache);
	qsv_spans_destroy(&s->spans);
	qsv_budget_destroy(&s->pins);
	pthread_mutex_destroy(&s->seen_mu);
	free(s);
}

int qsv_first_report(qsv_server *s, uint64_t gen, uint64_t key)
{
	uint64_t now = qsv_now_ns() / 1000000000ull;
	int first = 1;
	pthread_mutex_lock(&s->seen_mu);
	for (unsigned i = 0; i < 64 && first; i++)
		first = !(s->seen[i].gen == gen && s->seen[i].key == key && now - s->seen[i].when < 60);
	if (first) {
		unsigned i = s->seen_next++ % 64;
		s->seen[i].gen = gen;
		s->seen[i].key = key;
		s->seen[i].when = now;
	}
	pthread_mutex_unlock(&s->seen_mu);
	return first;
}

/* ---- open files and their prefetch windows ------------------------------------ */

void qsv_file_open(qsv_file *f, qsv_version *v, int view, size_t file)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->mu, NULL);
	f->v = v;
	f->view = view;
	f->file = file;
	qsv_version_ref(v);
	pthread_mutex_lock(&v->mu);
	v->open_files++;
	pthread_mutex_unlock(&v->mu);
}

void qsv_file_close(qsv_file *f)
{
	pthread_mutex_lock(&f->v->mu);
	f->v->open_files--;
	pthread_mutex_unlock(&f->v->mu);
	qsv_version_unref(f->v);
	pthread_mutex_destroy(&f->mu);
}

void qsv_window_after_read(qsv_window *w, uint64_t max, uint64_t off, uint64_t len, uint64_t *from, uint64_t *to)
{
	/* sequential: near where the furthest read so far ended, ahead of it or
	 * behind it.  The kernel's readahead sends several reads at once and
	 * FUSE threads finish them in any order: with a one-sided test, a cold
	 * sequential cat reset the window on 272 of its 505 reads, and prefetch
	 * never got ahead of the kernel. */
	uint64_t slack = w->window > (8u << 20) ? w->window : (8u << 20);
	int seq = off <= w->next_off + slack && off + len + slack >= w->next_off;
	if (seq)
		w->window = w->window ? (2 * w->window < max ? 2 * w->window : max) : (1u << 20 < max ? 1u << 20 : max);
	else
		w->window = 0, w->prefetched_to = 0;
	if (off + len > w->next_off || !seq)
		w->next_off = off + len;
	*from = w->next_off > w->prefetched_to ? w->next_off : w->prefetched_to;
	*to = w->next_off + w->window;
	if (*to > *from)
		w->prefetched_to = *to;
}

static void after_read(qsv_server *s, qsv_file *f, uint64_t off, uint64_t len)
{
	/* a window near the cache's size evicts what it prefetched before it is
	 * read (cache_size=64M with the 64M default window decoded 40% of the
	 * chunks twice): a quarter of the cache at most */
	uint64_t max = atomic_load(&s->prefetch_max), cap = qsv_cache_capacity(s->cache) / 4, from, to;
	max = max < cap ? max : cap;
	if (!max || !s->pf)
		return;
	pthread_mutex_lock(&f->mu);
	qsv_window_after_read(&f->w, max, off, len, &from, &to);
	pthread_mutex_unlock(&f->mu);
	if (to <= from)
		return;
	qs_piece p[QSV_MAX_PIECES];
	size_t n = qs_map(f->v->c, (qs_view)f->view, f->file, from, to - from, p, QSV_MAX_PIECES);
	for (size_t i = 0; i < n; i++)
		if (!i || p[i].key != p[i - 1].key)
			qsv_prefetch_enqueue(s->pf, f->v, f->view, f->file, &p[i]);
}

/* ---- reads -------------------------------------------------------------------- */

/* A read touching more chunks than one iovec batch: copy into a buffer,
 * batch by batch (a short reply would read as end of file). */
static int read_many(qsv_server *s, qsv_file *f, uint64_t off, size_t size, qsv_reply *r)
{
	qs_piece p[QSV_MAX_PIECES];
	qsv_entry *e[QSV_MAX_PIECES];
	if (!(r->buf = malloc(size ? size : 1)))
		return -ENOMEM;
	while (r->total < size) {
		size_t n = qs_map(f->v->c, (qs_view)f->view, f->file, off + r->total, size - r->total, p, QSV_MAX_PIECES);
		if (!n)
			break;
		int rc = qsv_fetch(f->v, f->view, f->file, p, n, e);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++) {
			memcpy(r->buf + r->total, qsv_entry_data(e[i]) + p[i].chunk_off, p[i].len);
			r->total += p[i].len;
			qsv_cache_put(s->cache, e[i]);
		}
	}
	r->iov[0] = (struct iovec){ r->buf, r->total };
	r->n = 1;
	return 0;
}

int qsv_read(qsv_server *s, qsv_file *f, uint64_t off, size_t size, qsv_reply *r)
{
	qs_piece p[QSV_MAX_PIECES];
	memset(r, 0, sizeof(*r));
	atomic_fetch_add(&s->n.reads, 1);
	size_t n = qs_map(f->v->c, (qs_view)f->view, f->file, off, size, p, QSV_MAX_PIECES), total = 0;
	uint64_t pin = 0;
	for (size_t i = 0; i < n; i++) {
		total += p[i].len;
		pin += p[i].decoded_size + p[i].span_len;
	}
	int rc;
	if (n == QSV_MAX_PIECES && total < size)
		pin += size;   /* read_many's bounce buffer; its later batches are like the first */
	qsv_budget_take(&s->pins, pin);
	r->pinned = pin;
	if (n == QSV_MAX_PIECES && total < size) {
		rc = read_many(s, f, off, size, r);   /* a range of many tiny tensors */
	} else {
		rc = n ? qsv_fetch(f->v, f->view, f->file, p, n, r->e) : 0;
		for (size_t i = 0; !rc && i < n; i++)
			r->iov[i] = (struct iovec){ qsv_entry_data(r->e[i]) + p[i].chunk_off, p[i].len };
		r->n = rc ? 0 : n;
		r->total = rc ? 0 : total;
	}
	if (rc) {
		qsv_reply_release(s, r);
		return rc;
	}
	after_read(s, f, off, r->total);
	atomic_fetch_add(&s->n.read_bytes, r->total);
	return 0;
}

void qsv_reply_release(qsv_server *s, qsv_reply *r)
{
	if (r->buf) {
		free(r->buf);
	} else {
		for (size_t i = 0; i < r->n; i++)
			qsv_cache_put(s->cache, r->e[i]);
	}
	if (r->pinned)
		qsv_budget_give(&s->pins, r->pinned);
	memset(r, 0, sizeof(*r));
}
