/* fetch.c - io_uring backing reads, decoding into the cache, prefetch. */
#include "fetch.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

#define BATCH 32          /* chunks read in one io_uring submission */
#define KEEP_SPANS 2
#define PREFETCH_QUEUE 256

/* ---- per-thread io_uring and span buffers ---------------------------------- */

/* One per thread (FUSE's and ours), freed when the thread exits. */
typedef struct tstate {
	struct io_uring ring;
	int ring_state;            /* 0 untried, 1 ok, -1 failed: fall back to pread */
	uint8_t *spans[BATCH];
	size_t cap[BATCH];
} tstate;

static pthread_key_t tkey;
static pthread_once_t tonce = PTHREAD_ONCE_INIT;

static void tstate_free(void *p)
{
	tstate *t = p;
	for (int i = 0; i < BATCH; i++)
		free(t->spans[i]);
	if (t->ring_state > 0)
		io_uring_queue_exit(&t->ring);
	free(t);
}

static void tkey_make(void) { pthread_key_create(&tkey, tstate_free); }

static tstate *me(void)
{
	pthread_once(&tonce, tkey_make);
	tstate *t = pthread_getspecific(tkey);
	if (!t && (t = calloc(1, sizeof(*t))))
		pthread_setspecific(tkey, t);
	return t;
}

static uint8_t *span_buf(tstate *t, int i, size_t len)
{
	if (t->cap[i] < len) {
		uint8_t *p = realloc(t->spans[i], len);
		if (!p)
			return NULL;
		t->spans[i] = p;
		t->cap[i] = len;
	}
	return t->spans[i];
}

static int pread_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Read n spans (offsets off[i], lengths len[i]) of fd into spans[i]; sets
 * res[i] to 0 or -errno. */
static void read_spans(tstate *t, int fd, const uint64_t *off, const size_t *len, int n, int *res)
{
	uint8_t **spans = t->spans;
	struct io_uring *ring = &t->ring;
	if (!t->ring_state)
		t->ring_state = io_uring_queue_init(BATCH, ring, 0) ? -1 : 1;
	int pending = 0;
	for (int i = 0; i < n; i++) {
		res[i] = 0;
		if (!len[i])
			continue;
		if (t->ring_state < 0) {
			res[i] = pread_all(fd, spans[i], len[i], off[i]);
			continue;
		}
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		io_uring_prep_read(sqe, fd, spans[i], (unsigned)len[i], off[i]);
		io_uring_sqe_set_data64(sqe, (uint64_t)i);
		pending++;
	}
	if (!pending)
		return;
	io_uring_submit(ring);
	while (pending) {
		struct io_uring_cqe *cqe;
		int e = io_uring_wait_cqe(ring, &cqe);
		if (e == -EINTR)
			continue;
		if (e < 0) {   /* the ring broke: finish with pread */
			for (int i = 0; i < n; i++)
				if (len[i])
					res[i] = pread_all(fd, spans[i], len[i], off[i]);
			return;
		}
		int i = (int)io_uring_cqe_get_data64(cqe);
		int r = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		pending--;
		if (r < 0)
			res[i] = r;
		else if ((size_t)r < len[i])   /* short read: finish it plainly */
			res[i] = pread_all(fd, spans[i] + r, len[i] - (size_t)r, off[i] + (uint64_t)r);
		atomic_fetch_add(&qfs_daemon()->n.backing_bytes, len[i]);
	}
}

/* One log line per failing chunk per minute: the kernel retries a failed
 * read in smaller pieces, which would repeat the same line many times. */
static int first_report(uint64_t gen, uint64_t key)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static struct { uint64_t gen, key, when; } seen[64];
	static unsigned next;
	uint64_t now = now_ns() / 1000000000ull;
	int first = 1;
	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < 64 && first; i++)
		first = !(seen[i].gen == gen && seen[i].key == key && now - seen[i].when < 60);
	if (first)
		seen[next++ % 64] = (typeof(seen[0])){ gen, key, now };
	pthread_mutex_unlock(&mu);
	return first;
}

/* Decode the loaded spans into the entries; publishes each; 0 if all ok. */
static int decode_all(tstate *t, qfs_model *m, int view, size_t file, const qs_piece *const *p, qfs_entry **e,
		      const int *res, int n)
{
	qs_reader *r = qfs_model_reader(m);
	qs_file_info fi;
	qs_file_get(m->c, (qs_view)view, file, &fi);
	int bad = 0;
	for (int i = 0; i < n; i++) {
		qs_error err = { 0 };
		uint64_t t0 = now_ns();
		ssize_t got = -1;
		if (res[i])
			snprintf(err.msg, sizeof(err.msg), "%s: file '%s': tensor '%s': chunk %llu: backing read error: %s",
				 qs_container_path(m->c), fi.path, qs_stream_label(m->c, p[i]->stream),
				 (unsigned long long)p[i]->chunk, strerror(-res[i]));
		else if (!r)
			snprintf(err.msg, sizeof(err.msg), "%s: out of memory for a reader", qs_container_path(m->c));
		else
			got = qs_decode_span(r, p[i]->stream, p[i]->face, p[i]->chunk, t->spans[i], qfs_entry_data(e[i]),
					     fi.path, &err);
		if (got < 0) {
			if (first_report(m->gen, qs_chunk_key(m->c, p[i]->stream, p[i]->face, p[i]->chunk)))
				qfs_log(QFS_ERR, "%s", err.msg);
			atomic_fetch_add(&qfs_daemon()->n.errors, 1);
			bad = 1;
		} else {
			atomic_fetch_add(&qfs_daemon()->n.decoded_bytes, (uint64_t)got);
			atomic_fetch_add(&qfs_daemon()->n.decode_ns, now_ns() - t0);
		}
		qfs_cache_publish(qfs_daemon()->cache, e[i], got >= 0);
	}
	if (r)
		qfs_model_reader_done(m, r);
	return bad ? -1 : 0;
}

/* Load entries e[0..n) (all owned by the caller, LOADING) for pieces p. */
static int load(qfs_model *m, int view, size_t file, const qs_piece *const *p, qfs_entry **e, int n)
{
	uint64_t off[BATCH];
	size_t len[BATCH];
	int res[BATCH];
	tstate *t = me();
	for (int i = 0; i < n; i++) {
		qs_chunk_span(m->c, p[i]->stream, p[i]->face, p[i]->chunk, &off[i], &len[i]);
		if (!t || !span_buf(t, i, len[i] + 1)) {
			for (int k = 0; k < n; k++)
				qfs_cache_publish(qfs_daemon()->cache, e[k], 0);
			return -ENOMEM;
		}
	}
	read_spans(t, qs_container_fd(m->c), off, len, n, res);
	int rc = decode_all(t, m, view, file, p, e, res, n) ? -EIO : 0;
	/* keep two span buffers warm per thread; a batch's others go back, or
	 * sixteen FUSE threads could each hold 32 MiB of them */
	for (int i = KEEP_SPANS; i < n; i++) {
		free(t->spans[i]);
		t->spans[i] = NULL;
		t->cap[i] = 0;
	}
	return rc;
}

/* The cache entry of a piece's chunk (see qfs_cache_get for MODE and OWN). */
static qfs_entry *entry_of(qfs_model *m, const qs_piece *x, int mode, int *own)
{
	return qfs_cache_get(qfs_daemon()->cache, m->gen, qs_chunk_key(m->c, x->stream, x->face, x->chunk),
			     (size_t)qs_chunk_decoded_size(m->c, x->stream, x->face, x->chunk), mode, own);
}

int qfs_fetch(qfs_model *m, int view, size_t file, const qs_piece *p, size_t n, qfs_entry **e)
{
	qfs_cache *cache = qfs_daemon()->cache;
	const qs_piece *todo[BATCH];
	qfs_entry *todo_e[BATCH];
	int nt = 0, rc = 0, waiting = 0;
	/* 1. take what is cached, claim what is missing, skip what others load */
	for (size_t i = 0; i < n; i++) {
		int own;
		const qs_piece *x = &p[i];
		e[i] = rc ? NULL : entry_of(m, x, QFS_GET_TRY, &own);
		if (!e[i]) {
			if (!rc && errno == EAGAIN)
				waiting = 1;
			else if (!rc)
				rc = -ENOMEM;
			continue;
		}
		if (own) {
			todo[nt] = x;
			todo_e[nt++] = e[i];
			if (nt == BATCH) {
				int r = load(m, view, file, todo, todo_e, nt);
				rc = rc ? rc : r;
				nt = 0;
			}
		}
	}
	/* 2. load ours in one batch of reads: nothing we hold is LOADING after */
	if (nt) {
		int r = load(m, view, file, todo, todo_e, nt);
		rc = rc ? rc : r;
	}
	/* 3. now wait for the chunks other threads were loading */
	for (size_t i = 0; waiting && !rc && i < n; i++) {
		if (e[i])
			continue;
		int own;
		const qs_piece *x = &p[i];
		e[i] = entry_of(m, x, QFS_GET_WAIT, &own);
		if (e[i] && own) {
			const qs_piece *one = x;
			rc = load(m, view, file, &one, &e[i], 1);   /* its loader failed and dropped it */
		} else if (!e[i]) {
			rc = errno == ENOMEM ? -ENOMEM : -EIO;
		}
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (e[i])
				qfs_cache_put(cache, e[i]);
		return rc;
	}
	return 0;
}

/* ---- prefetch ----------------------------------------------------------------- */

typedef struct job { qfs_model *m; int view; size_t file; qs_piece p; } job;

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job q[PREFETCH_QUEUE];
	size_t head, count;
	int stop;
	pthread_t *tid;
	unsigned n;
} pf = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *prefetch_worker(void *arg)
{
	(void)arg;
	qfs_cache *cache = qfs_daemon()->cache;
	pthread_mutex_lock(&pf.mu);
	for (;;) {
		while (!pf.stop && !pf.count)
			pthread_cond_wait(&pf.cv, &pf.mu);
		if (pf.stop)
			break;
		job j = pf.q[pf.head];
		pf.head = (pf.head + 1) % PREFETCH_QUEUE;
		pf.count--;
		pthread_mutex_unlock(&pf.mu);
		int own;
		qfs_entry *e = entry_of(j.m, &j.p, QFS_GET_PREFETCH, &own);
		if (e) {
			const qs_piece *pp = &j.p;
			load(j.m, j.view, j.file, &pp, &e, 1);
			qfs_cache_put(cache, e);
		}
		qfs_model_unref(j.m);
		pthread_mutex_lock(&pf.mu);
	}
	pthread_mutex_unlock(&pf.mu);
	return NULL;
}

int qfs_prefetch_start(unsigned workers)
{
	pf.tid = calloc(workers ? workers : 1, sizeof(pthread_t));
	if (!pf.tid)
		return -1;
	for (pf.n = 0; pf.n < workers; pf.n++)
		if (pthread_create(&pf.tid[pf.n], NULL, prefetch_worker, NULL))
			return -1;
	return 0;
}

void qfs_prefetch_stop(void)
{
	pthread_mutex_lock(&pf.mu);
	pf.stop = 1;
	pthread_cond_broadcast(&pf.cv);
	pthread_mutex_unlock(&pf.mu);
	for (unsigned i = 0; i < pf.n; i++)
		pthread_join(pf.tid[i], NULL);
	for (; pf.count; pf.count--, pf.head = (pf.head + 1) % PREFETCH_QUEUE)
		qfs_model_unref(pf.q[pf.head].m);
	free(pf.tid);
}

static void enqueue(qfs_handle *h, const qs_piece *p)
{
	pthread_mutex_lock(&pf.mu);
	if (pf.count < PREFETCH_QUEUE && !pf.stop) {
		qfs_model_ref(h->m);
		pf.q[(pf.head + pf.count++) % PREFETCH_QUEUE] = (job){ h->m, h->view, h->file, *p };
		pthread_cond_signal(&pf.cv);
	}
	pthread_mutex_unlock(&pf.mu);
}

void qfs_after_read(qfs_handle *h, uint64_t off, uint64_t len)
{
	uint64_t max = qfs_daemon()->o.prefetch_max, from, to;
	if (!max || !pf.n)
		return;
	pthread_mutex_lock(&h->mu);
	/* sequential: reaches where the last read ended, or lands a little
	 * ahead of it (the kernel's readahead sends several reads at once and
	 * they may arrive out of order) */
	uint64_t slack = h->window > (4u << 20) ? h->window : (4u << 20);
	int seq = off + len >= h->next_off && off <= h->next_off + slack;
	if (seq)
		h->window = h->window ? (2 * h->window < max ? 2 * h->window : max) : (1u << 20);
	else
		h->window = 0, h->prefetched_to = 0;
	if (off + len > h->next_off || !seq)
		h->next_off = off + len;
	from = h->next_off > h->prefetched_to ? h->next_off : h->prefetched_to;
	to = h->next_off + h->window;
	if (to > from)
		h->prefetched_to = to;
	pthread_mutex_unlock(&h->mu);
	if (to <= from)
		return;
	qs_piece p[64];
	size_t n = qs_map(h->m->c, (qs_view)h->view, h->file, from, to - from, p, 64);
	for (size_t i = 0; i < n; i++)
		if (!i || p[i].chunk != p[i - 1].chunk || p[i].stream != p[i - 1].stream)
			enqueue(h, &p[i]);
}
