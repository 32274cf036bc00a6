/* fetch.c - io_uring backing reads and decoding into the cache; see fetch.h. */
#include "fetch.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define BATCH 32          /* chunks read in one io_uring submission */

/* One per thread (FUSE's, the workers', a test's), freed at thread exit. */
typedef struct io_state {
	struct io_uring ring;
	int ring_state;            /* 0 untried, 1 ok, -1 failed: fall back to pread */
} io_state;

void qsv_io_free(void *p)
{
	io_state *t = p;
	if (t->ring_state > 0)
		io_uring_queue_exit(&t->ring);
	free(t);
}

static io_state *io_of(qsv_server *s)
{
	io_state *t = pthread_getspecific(s->io_key);
	if (!t && (t = calloc(1, sizeof(*t))))
		pthread_setspecific(s->io_key, t);
	return t;
}

/* A span with pread (the library's one loop): 0 or -errno. */
static int pread_span(qsv_version *v, const qs_piece *p, uint8_t *buf)
{
	qs_error e = { 0 };
	return qs_read_span(v->c, p, buf, NULL, &e) ? -(e.code ? e.code : EIO) : 0;
}

static void pread_spans(qsv_version *v, const qs_piece *const *p, uint8_t *const *buf, int n, int *res)
{
	for (int i = 0; i < n; i++)
		res[i] = pread_span(v, p[i], buf[i]);
}

/* Read the spans of p[0..n) into buf[i]; res[i] = 0 or -errno. */
static void read_spans(io_state *t, qsv_version *v, const qs_piece *const *p, uint8_t *const *buf, int n,
		       int *res)
{
	struct io_uring *ring = &t->ring;
	if (!t->ring_state)
		t->ring_state = io_uring_queue_init(BATCH, ring, 0) ? -1 : 1;
	if (t->ring_state < 0)
		return pread_spans(v, p, buf, n, res);
	int pending = 0, fd = qs_container_fd(v->c);
	for (int i = 0; i < n; i++) {
		res[i] = 0;
		if (!p[i]->span_len)
			continue;
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		io_uring_prep_read(sqe, fd, buf[i], (unsigned)p[i]->span_len, p[i]->span_off);
		io_uring_sqe_set_data64(sqe, (uint64_t)i);
		pending++;
	}
	if (pending)
		io_uring_submit(ring);
	while (pending) {
		struct io_uring_cqe *cqe;
		int e = io_uring_wait_cqe(ring, &cqe);
		if (e == -EINTR)
			continue;
		if (e < 0)   /* the ring broke: do the whole batch plainly */
			return pread_spans(v, p, buf, n, res);
		int i = (int)io_uring_cqe_get_data64(cqe);
		int r = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		pending--;
		/* an error, or a short read (the file shrank): pread names it */
		if (r < 0 || (size_t)r < p[i]->span_len)
			res[i] = pread_span(v, p[i], buf[i]);
		atomic_fetch_add(&v->srv->n.backing_bytes, p[i]->span_len);
	}
}

/* Decode one loaded span into its entry; 0 or -1 (logged). */
static int decode_one(qsv_version *v, qs_reader *r, const qs_piece *p, const uint8_t *span, qsv_entry *e,
		      int res, const char *path, qs_error *rerr)
{
	qsv_server *s = v->srv;
	qs_error err = { 0 };
	uint64_t t0 = qsv_now_ns();
	ssize_t got = -1;
	char what[160];
	if (res) {
		snprintf(what, sizeof(what), "backing read error: %s", strerror(-res));
		qs_piece_error(v->c, p, path, -res, what, &err);
	}
	else if (!r)
		err = *rerr;
	else
		got = qs_decode_piece(r, p, span, qsv_entry_data(e), path, &err);
	if (got < 0) {
		if (qsv_first_report(s, v->gen, p->key))
			qsv_logf(s->log, QSV_ERR, "%s", err.msg);
		atomic_fetch_add(&s->n.errors, 1);
		return -1;
	}
	atomic_fetch_add(&s->n.decoded_bytes, (uint64_t)got);
	atomic_fetch_add(&s->n.decode_ns, qsv_now_ns() - t0);
	return 0;
}

/* Load entries e[0..n) (all owned by the caller, LOADING) for pieces p. */
static int load(qsv_version *v, int view, size_t file, const qs_piece *const *p, qsv_entry **e, int n)
{
	int res[BATCH], bad = 0, rc = 0;
	uint8_t *buf[BATCH] = { 0 };
	size_t cap[BATCH] = { 0 };
	io_state *t = io_of(v->srv);
	for (int i = 0; i < n && !rc; i++)
		if (!t || !(buf[i] = qsv_span_take(&v->srv->spans, p[i]->span_len + 1, &cap[i])))
			rc = -ENOMEM;
	if (!rc) {
		read_spans(t, v, p, buf, n, res);
		qs_file_info fi;
		qs_file_get(v->c, (qs_view)view, file, &fi);
		qs_error rerr = { 0 };
		qs_reader *r = qsv_version_reader(v, &rerr);
		for (int i = 0; i < n; i++) {
			int ok = !decode_one(v, r, p[i], buf[i], e[i], res[i], fi.path, &rerr);
			bad |= !ok;
			qsv_cache_publish(v->srv->cache, e[i], ok);
		}
		if (r)
			qsv_version_reader_done(v, r);
	} else {
		for (int i = 0; i < n; i++)
			qsv_cache_publish(v->srv->cache, e[i], 0);
	}
	for (int i = 0; i < n; i++)
		qsv_span_give(&v->srv->spans, buf[i], cap[i]);
	return rc ? rc : bad ? -EIO : 0;
}

static qsv_entry *entry_of(qsv_version *v, const qs_piece *x, int mode, int *own)
{
	return qsv_cache_get(v->srv->cache, v->gen, x->key, (size_t)x->decoded_size, mode, own);
}

/* Another thread is loading the piece P's decode is cheaper after (an INT4
 * scale face's codes: a decode at the same time would decode them again);
 * with WAIT, wait for it (holding nothing we must still load). */
static int after_loading(qsv_version *v, const qs_piece *p, int wait)
{
	uint64_t key;
	return qs_piece_after(v->c, p, &key) && qsv_cache_loading(v->srv->cache, v->gen, key, wait);
}

/* Wait for the chunks other threads were loading, and load those that
 * waited for them (step 3 of qsv_fetch). */
static int wait_others(qsv_version *v, int view, size_t file, const qs_piece *p, size_t n, qsv_entry **e)
{
	for (size_t i = 0; i < n; i++) {
		if (e[i])
			continue;
		after_loading(v, &p[i], 1);
		int own;
		e[i] = entry_of(v, &p[i], QSV_GET_WAIT, &own);
		if (!e[i])
			return errno == ENOMEM ? -ENOMEM : -EIO;
		const qs_piece *one = &p[i];
		int rc = own ? load(v, view, file, &one, &e[i], 1) : 0;   /* its loader failed and dropped it */
		if (rc)
			return rc;
	}
	return 0;
}

int qsv_fetch(qsv_version *v, int view, size_t file, const qs_piece *p, size_t n, qsv_entry **e)
{
	const qs_piece *todo[BATCH];
	qsv_entry *todo_e[BATCH];
	int nt = 0, rc = 0, waiting = 0;
	/* 1. take what is cached, claim what is missing, skip what others load
	 * and what is cheaper after what others load */
	for (size_t i = 0; i < n; i++) {
		int own;
		if (!rc && after_loading(v, &p[i], 0)) {
			e[i] = NULL;
			waiting = 1;
			continue;
		}
		e[i] = rc ? NULL : entry_of(v, &p[i], QSV_GET_TRY, &own);
		if (!e[i]) {
			if (!rc && errno == EAGAIN)
				waiting = 1;
			else if (!rc)
				rc = -ENOMEM;
			continue;
		}
		if (own) {
			todo[nt] = &p[i];
			todo_e[nt++] = e[i];
		}
		if (nt == BATCH) {
			int r = load(v, view, file, todo, todo_e, nt);
			rc = rc ? rc : r;
			nt = 0;
		}
	}
	/* 2. load the rest of ours: nothing we hold is LOADING after this */
	if (nt) {
		int r = load(v, view, file, todo, todo_e, nt);
		rc = rc ? rc : r;
	}
	if (waiting && !rc)
		rc = wait_others(v, view, file, p, n, e);
	if (rc)
		for (size_t i = 0; i < n; i++)
			if (e[i])
				qsv_cache_put(v->srv->cache, e[i]);
	return rc;
}

void qsv_fetch_ahead(qsv_version *v, int view, size_t file, const qs_piece *p)
{
	int own;
	uint64_t pin = p->decoded_size + p->span_len;
	if (after_loading(v, p, 0))
		return;   /* a read will load it after that, for less */
	if (!qsv_budget_try(&v->srv->pins, pin))
		return;   /* reads come first: prefetch never waits for the budget */
	qsv_entry *e = entry_of(v, p, QSV_GET_PREFETCH, &own);
	if (e) {
		load(v, view, file, &p, &e, 1);
		qsv_cache_put(v->srv->cache, e);
	}
	qsv_budget_give(&v->srv->pins, pin);
}
