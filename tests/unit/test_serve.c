/*
 * test_serve.c - the serving layer without FUSE: reads through it equal
 * qs_read, the cache holds its bound, span buffers are pooled, single-flight
 * and pinning, prefetch windows, and version swaps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "qstore.h"
#include "testutil.h"
#include "../../serve/fetch.h"
#include "../../serve/version.h"

static uint16_t bf16_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* A two-shard BF16 model in DIR/src, packed with 4 KiB chunks into OUT;
 * SEED varies the weights. */
static void make_container(const char *dir, const char *out, unsigned seed)
{
	char src[4200], path[4300];
	snprintf(src, sizeof(src), "%s/src-%u", dir, seed);
	mkdir(src, 0755);
	uint16_t *w[3];
	uint64_t rows = 64, cols = 96;
	for (int k = 0; k < 3; k++) {
		w[k] = malloc(rows * cols * 2);
		for (uint64_t i = 0; i < rows * cols; i++)
			w[k][i] = bf16_of((float)((int)((i * 2654435761u + seed * 97 + k) % 2001) - 1000) / 700.0f);
	}
	tt_tensor a[] = { { "layers.0.mlp.weight", "BF16", 2, { rows, cols }, w[0], rows * cols * 2 },
			  { "layers.0.attn.weight", "BF16", 2, { rows, cols }, w[1], rows * cols * 2 } };
	tt_tensor b[] = { { "layers.1.mlp.weight", "BF16", 2, { rows, cols }, w[2], rows * cols * 2 } };
	snprintf(path, sizeof(path), "%s/model-00001-of-00002.safetensors", src);
	tt_write_st(path, a, 2, NULL);
	snprintf(path, sizeof(path), "%s/model-00002-of-00002.safetensors", src);
	tt_write_st(path, b, 1, NULL);
	snprintf(path, sizeof(path), "%s/config.json", src);
	const char *cfg = "{\"model_type\": \"llama\", \"torch_dtype\": \"bfloat16\"}";
	tt_write_file(path, cfg, strlen(cfg));
	qs_pack_options o = { .threads = 1, .chunk_bytes = 4096, .force = 1 };   /* versions replace each other */
	qs_error e = { 0 };
	if (qs_pack(src, out, &o, NULL, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		abort();
	}
	for (int k = 0; k < 3; k++)
		free(w[k]);
}

typedef struct fixture {
	char *dir;
	char qst[4200];
	qsv_log log;
	FILE *logf;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tt_tmpdir();
	snprintf(f->qst, sizeof(f->qst), "%s/m.qst", f->dir);
	make_container(f->dir, f->qst, 1);
	qsv_log_init(&f->log, QSV_DEBUG);
	f->log.out = f->logf = tmpfile();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	fclose(f->logf);
	tt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static qsv_version *open_version(qsv_server *s, const char *path)
{
	struct stat st;
	qs_error e = { 0 };
	assert_int_equal(stat(path, &st), 0);
	qsv_version *v = qsv_version_open(s, "m", path, &st, &e);
	assert_non_null(v);
	return v;
}

/* Every file of both views through qsv_read in uneven pieces == qs_read. */
static void check_all_files(qsv_server *s, qsv_version *v, uint64_t bound)
{
	qs_reader *r = qs_reader_new(v->c, NULL);
	assert_non_null(r);
	for (int view = 0; view < 2; view++)
		for (size_t i = 0; i < qs_file_count(v->c, (qs_view)view); i++) {
			qs_file_info fi;
			qs_file_get(v->c, (qs_view)view, i, &fi);
			uint8_t *want = malloc(fi.size + 1), *got = malloc(fi.size + 1);
			assert_int_equal(qs_read(r, (qs_view)view, i, 0, want, fi.size, NULL), (ssize_t)fi.size);
			qsv_file f;
			qsv_file_open(&f, v, view, i);
			uint64_t off = 0, step = 777;
			while (off < fi.size) {
				qsv_reply rep;
				assert_int_equal(qsv_read(s, &f, off, (size_t)step, &rep), 0);
				assert_true(rep.total > 0);
				for (size_t k = 0, at = 0; k < rep.n; at += rep.iov[k].iov_len, k++)
					memcpy(got + off + at, rep.iov[k].iov_base, rep.iov[k].iov_len);
				off += rep.total;
				qsv_reply_release(s, &rep);
				qsv_cache_stats cs;
				qsv_cache_get_stats(s->cache, &cs);
				assert_true(cs.used <= bound);
				step = step * 3 % 20011 + 1;
			}
			assert_memory_equal(got, want, fi.size);
			qsv_file_close(&f);
			free(want);
			free(got);
		}
	qs_reader_free(r);
}

static void test_reads_equal_qs_read(void **state)
{
	fixture *fx = *state;
	qsv_server *s = qsv_server_new(64 << 20, 0, &fx->log);
	qsv_version *v = open_version(s, fx->qst);
	assert_true(qs_single_file(v->c, QS_VIEW_HIGH, NULL) >= 0);   /* the merged view is served too */
	check_all_files(s, v, 64 << 20);
	qsv_version_unref(v);
	qsv_server_free(s);
}

/* A cache of two chunks: reads stay correct and the bound holds after
 * every reply is released. */
static void test_cache_bound(void **state)
{
	fixture *fx = *state;
	qsv_server *s = qsv_server_new(8192, 0, &fx->log);
	qsv_version *v = open_version(s, fx->qst);
	check_all_files(s, v, 8192);
	qsv_cache_stats cs;
	qsv_cache_get_stats(s->cache, &cs);
	assert_true(cs.evictions > 0);
	qsv_version_unref(v);
	qsv_server_free(s);
}

/* One new entry of SIZE bytes for KEY, filled, published and let go; its
 * data pointer returned.  The cache's entries and pooled buffers must then
 * fit in its capacity. */
static uint8_t *add_entry(qsv_cache *c, uint64_t key, size_t size)
{
	int own;
	qsv_entry *e = qsv_cache_get(c, 1, key, size, QSV_GET_WAIT, &own);
	assert_non_null(e);
	assert_true(own);
	uint8_t *data = qsv_entry_data(e);
	memset(data, (int)key, size);
	qsv_cache_publish(c, e, 1);
	qsv_cache_put(c, e);
	qsv_cache_stats cs;
	qsv_cache_get_stats(c, &cs);
	assert_true(cs.used + cs.pooled <= cs.capacity);
	return data;
}

/* Evicted chunk buffers are reused for new chunks of their size, and what
 * the cache keeps (entries + pooled buffers) stays within its capacity. */
static void test_buffer_reuse(void **state)
{
	(void)state;
	const size_t sz = 1 << 20;
	qsv_cache *c = qsv_cache_new(4 * sz);
	uint8_t *seen[64];
	int reused = 0;
	for (uint64_t k = 0; k < 64; k++) {
		seen[k] = add_entry(c, k, sz);
		for (uint64_t j = 0; j < k && !reused; j++)
			reused = seen[j] == seen[k];
	}
	assert_true(reused);
	add_entry(c, 1000, 3 * sz);   /* another size: the pooled 1 MiB buffers make room first */
	qsv_cache_free(c);
}

/* Span buffers: the best fit is reused, and neither a buffer over the
 * per-buffer limit nor bytes past the pool's bound are kept. */
static void test_span_pool(void **state)
{
	(void)state;
	qsv_spans sp;
	size_t cap, c1, c2, kept;
	uint64_t reused, allocated;
	assert_int_equal(qsv_spans_init(&sp), 0);
	uint8_t *big = qsv_span_take(&sp, 2 << 20, &c2), *small = qsv_span_take(&sp, 1 << 20, &c1);
	assert_non_null(big);
	assert_non_null(small);
	assert_true(c2 >= 2 << 20 && c1 >= 1 << 20);
	qsv_span_give(&sp, big, c2);
	qsv_span_give(&sp, small, c1);
	uint8_t *tiny = qsv_span_take(&sp, 1000, &cap);   /* under the minimum: malloc's, not a kept one */
	assert_true(tiny != small && tiny != big && cap == 1000);
	qsv_span_give(&sp, tiny, cap);
	qsv_spans_stats(&sp, &kept, &reused, &allocated);
	assert_int_equal(kept, c1 + c2);
	uint8_t *p = qsv_span_take(&sp, QSV_SPAN_KEEP_MIN, &cap);
	assert_ptr_equal(p, small);   /* the smallest that fits, not the first kept */
	assert_int_equal(cap, c1);
	qsv_span_give(&sp, p, cap);
	p = qsv_span_take(&sp, 3 << 20, &cap);   /* nothing fits: the largest is dropped, a new one made */
	assert_true(cap >= 3 << 20);
	memset(p, 1, 3 << 20);
	qsv_span_give(&sp, p, cap);
	qsv_spans_stats(&sp, &kept, &reused, &allocated);
	assert_int_equal(reused, 1);
	assert_int_equal(allocated, 3);
	assert_int_equal(kept, c1 + cap);
	uint8_t *huge = qsv_span_take(&sp, QSV_SPAN_KEEP_MAX + 1, &cap);
	qsv_span_give(&sp, huge, cap);
	qsv_spans_stats(&sp, &kept, &reused, &allocated);
	assert_int_equal(kept, c1);   /* the 3 MiB one made way for the huge one, which was not kept */
	uint8_t *many[QSV_SPAN_SLOTS + 8];
	size_t caps[QSV_SPAN_SLOTS + 8];
	for (int i = 0; i < QSV_SPAN_SLOTS + 8; i++)
		assert_non_null(many[i] = qsv_span_take(&sp, 1 << 20, &caps[i]));
	for (int i = 0; i < QSV_SPAN_SLOTS + 8; i++)
		qsv_span_give(&sp, many[i], caps[i]);
	qsv_spans_stats(&sp, &kept, &reused, &allocated);
	assert_true(kept <= QSV_SPAN_POOL && kept >= QSV_SPAN_POOL - (4u << 20));
	qsv_spans_destroy(&sp);
}

typedef struct racer { qsv_cache *c; int loads; qsv_entry *e; } racer;

static void *get_one(void *arg)
{
	racer *r = arg;
	int own;
	r->e = qsv_cache_get(r->c, 7, 42, 100, QSV_GET_WAIT, &own);
	if (r->e && own) {
		r->loads++;
		usleep(100000);   /* the other thread arrives while we load */
		memset(qsv_entry_data(r->e), 0xab, 100);
		qsv_cache_publish(r->c, r->e, 1);
	}
	return NULL;
}

/* Two readers of one missing chunk: one loads, the other waits for it. */
static void test_single_flight(void **state)
{
	(void)state;
	qsv_cache *c = qsv_cache_new(1 << 20);
	racer a = { c, 0, NULL }, b = { c, 0, NULL };
	pthread_t ta, tb;
	pthread_create(&ta, NULL, get_one, &a);
	usleep(20000);
	pthread_create(&tb, NULL, get_one, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.loads + b.loads, 1);
	assert_ptr_equal(a.e, b.e);
	assert_int_equal(qsv_entry_data(b.e)[99], 0xab);
	qsv_cache_stats st;
	qsv_cache_get_stats(c, &st);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.waits, 1);
	qsv_cache_put(c, a.e);
	qsv_cache_put(c, b.e);
	qsv_cache_free(c);
}

typedef struct waiter { qsv_cache *c; int loading; int published_first; atomic_int *published; } waiter;

static void *wait_for_42(void *arg)
{
	waiter *w = arg;
	w->loading = qsv_cache_loading(w->c, 7, 42, 1);
	w->published_first = atomic_load(w->published);
	return NULL;
}

/* qsv_cache_loading sees another thread's load, waits for it without
 * taking a hold, and says 0 for a chunk that is absent or ready. */
static void test_loading_wait(void **state)
{
	(void)state;
	qsv_cache *c = qsv_cache_new(1 << 20);
	atomic_int published = 0;
	assert_int_equal(qsv_cache_loading(c, 7, 42, 0), 0);   /* absent */
	int own;
	qsv_entry *e = qsv_cache_get(c, 7, 42, 100, QSV_GET_WAIT, &own);
	assert_true(e && own);
	assert_int_equal(qsv_cache_loading(c, 7, 42, 0), 1);
	assert_int_equal(qsv_cache_loading(c, 8, 42, 0), 0);   /* another version's */
	waiter w = { c, -1, 0, &published };
	pthread_t t;
	pthread_create(&t, NULL, wait_for_42, &w);
	usleep(50000);
	atomic_store(&published, 1);
	qsv_cache_publish(c, e, 1);
	pthread_join(t, NULL);
	assert_int_equal(w.loading, 0);
	assert_int_equal(w.published_first, 1);   /* it returned only after the publish */
	assert_int_equal(qsv_cache_loading(c, 7, 42, 1), 0);   /* ready: no wait */
	qsv_cache_put(c, e);
	qsv_entry *big = qsv_cache_get(c, 7, 43, 1 << 20, QSV_GET_WAIT, &own);   /* room only if 42 is unheld */
	qsv_cache_stats st;
	qsv_cache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);   /* the waiter left no hold behind */
	qsv_cache_publish(c, big, 1);
	qsv_cache_put(c, big);
	qsv_cache_free(c);
}

static qsv_entry *load_entry(qsv_cache *c, uint64_t key, size_t size)
{
	int own;
	qsv_entry *e = qsv_cache_get(c, 1, key, size, QSV_GET_WAIT, &own);
	assert_non_null(e);
	if (own)
		qsv_cache_publish(c, e, 1);
	return e;
}

/* A held entry is never evicted, even when the cache must go over its
 * bound to serve another; once released the bound holds again. */
static void test_eviction_under_pinning(void **state)
{
	(void)state;
	qsv_cache *c = qsv_cache_new(2000);
	qsv_entry *a = load_entry(c, 1, 1000);
	qsv_cache_put(c, load_entry(c, 2, 1000));
	qsv_entry *third = load_entry(c, 3, 1000);   /* evicts 2, not the held 1 */
	qsv_cache_stats st;
	qsv_cache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	int own;
	qsv_entry *again = qsv_cache_get(c, 1, 1, 1000, QSV_GET_TRY, &own);
	assert_ptr_equal(again, a);
	assert_int_equal(own, 0);
	qsv_entry *over = load_entry(c, 4, 1000);     /* all held: over the bound */
	qsv_cache_get_stats(c, &st);
	assert_true(st.used > st.capacity);
	qsv_cache_put(c, again);
	qsv_cache_put(c, a);
	qsv_cache_put(c, third);
	qsv_cache_put(c, over);
	qsv_cache_get_stats(c, &st);
	assert_true(st.used <= st.capacity);
	qsv_cache_free(c);
}

/* Sequential reads double the window up to the maximum; a jump resets it;
 * a read landing a little ahead (reordered readahead) is still sequential. */
static void test_window(void **state)
{
	(void)state;
	qsv_window w = { 0 };
	uint64_t from, to, max = 8u << 20, off = 0, want = 1u << 20;
	for (int i = 0; i < 6; i++, off += 131072) {
		qsv_window_after_read(&w, max, off, 131072, &from, &to);
		assert_int_equal(w.window, want);
		assert_int_equal(to, off + 131072 + want);
		want = 2 * want < max ? 2 * want : max;
	}
	qsv_window_after_read(&w, max, off + 65536, 131072, &from, &to);   /* a little ahead */
	assert_int_equal(w.window, max);
	/* a little behind: the kernel's readahead sends several reads and they
	 * finish in any order; the window must survive them */
	qsv_window_after_read(&w, max, off - 262144, 131072, &from, &to);
	assert_int_equal(w.window, max);
	assert_int_equal(w.next_off, off + 65536 + 131072);   /* the furthest end stays */
	qsv_window_after_read(&w, max, 500u << 20, 4096, &from, &to);        /* a jump */
	assert_int_equal(w.window, 0);
	assert_true(to <= from);
	qsv_window_after_read(&w, 512 << 10, (500u << 20) + 4096, 4096, &from, &to);
	assert_int_equal(w.window, 512 << 10);   /* never above the maximum */
}

/* The fixture's merged high view, opened as F on a version of S. */
static qsv_version *open_single_file(qsv_server *s, fixture *fx, qsv_file *f)
{
	qsv_version *v = open_version(s, fx->qst);
	ssize_t big = qs_single_file(v->c, QS_VIEW_HIGH, NULL);
	assert_true(big >= 0);
	qsv_file_open(f, v, QS_VIEW_HIGH, (size_t)big);
	return v;
}

/* With workers, sequential reads queue prefetch that gets used. */
static void test_prefetch_runs(void **state)
{
	fixture *fx = *state;
	qsv_server *s = qsv_server_new(64 << 20, 1 << 20, &fx->log);
	assert_int_equal(qsv_server_start_workers(s, 2), 0);
	qsv_file f;
	qsv_version *v = open_single_file(s, fx, &f);
	qsv_reply rep;
	assert_int_equal(qsv_read(s, &f, 0, 4096, &rep), 0);
	qsv_reply_release(s, &rep);
	qsv_cache_stats st = { 0 };
	for (int i = 0; i < 500 && !st.prefetch_issued; i++) {   /* a bound, not a timing claim */
		usleep(10000);
		qsv_cache_get_stats(s->cache, &st);
	}
	assert_true(st.prefetch_issued > 0);
	qsv_file_close(&f);
	qsv_version_unref(v);
	qsv_server_free(s);   /* joins the workers, drops their references */
}

/* The prefetch window never exceeds a quarter of the cache, whatever
 * prefetch_max says: a larger one evicts what it prefetched before it is read. */
static void test_window_capped_by_cache(void **state)
{
	fixture *fx = *state;
	qsv_server *s = qsv_server_new(16 << 20, 64 << 20, &fx->log);
	assert_int_equal(qsv_server_start_workers(s, 1), 0);
	qsv_file f;
	qsv_version *v = open_single_file(s, fx, &f);
	uint64_t top = 0;
	for (uint64_t off = 0; off < 8 * 65536; off += 65536) {   /* sequential: the window doubles */
		qsv_reply rep;
		assert_int_equal(qsv_read(s, &f, off, 65536, &rep), 0);
		qsv_reply_release(s, &rep);
		pthread_mutex_lock(&f.mu);
		top = f.w.window > top ? f.w.window : top;
		pthread_mutex_unlock(&f.mu);
	}
	assert_int_equal(top, 4 << 20);
	qsv_file_close(&f);
	qsv_version_unref(v);
	qsv_server_free(s);
}

/* A replaced container is a new version with its own cache space; an
 * open file of the old one reads the old bytes to the end; the old
 * version's entries go when its last reference does. */
static void test_version_swap(void **state)
{
	fixture *fx = *state;
	char other[4300];
	snprintf(other, sizeof(other), "%s/other.qst", fx->dir);
	make_container(fx->dir, other, 2);
	qsv_server *s = qsv_server_new(64 << 20, 0, &fx->log);
	qsv_version *v1 = open_version(s, fx->qst);
	qsv_file f;
	qsv_file_open(&f, v1, QS_VIEW_HIGH, 0);
	qsv_reply rep;
	assert_int_equal(qsv_read(s, &f, 0, 4096, &rep), 0);
	uint8_t before[4096];
	memcpy(before, rep.iov[0].iov_base, rep.iov[0].iov_len);
	qsv_reply_release(s, &rep);
	char tmp[4300];
	snprintf(tmp, sizeof(tmp), "%s/m.qst", fx->dir);
	assert_int_equal(rename(other, tmp), 0);   /* replaced under the open file */
	qsv_version *v2 = open_version(s, fx->qst);
	assert_true(v2->gen != v1->gen);
	qsv_version_unref(v1);                      /* the presenter lets go of v1 */
	check_all_files(s, v2, 64 << 20);
	assert_int_equal(qsv_read(s, &f, 0, 4096, &rep), 0);
	assert_memory_equal(rep.iov[0].iov_base, before, rep.iov[0].iov_len);
	qsv_reply_release(s, &rep);
	qsv_cache_stats a, b;
	qsv_cache_get_stats(s->cache, &a);
	qsv_file_close(&f);                         /* v1's last reference */
	qsv_cache_get_stats(s->cache, &b);
	assert_true(b.entries < a.entries);
	qsv_version_unref(v2);
	qsv_server_free(s);
	make_container(fx->dir, fx->qst, 1);        /* the fixture's container again */
}

/* One request naming a chunk twice (two extents in one chunk): the second
 * sight of our own claim must not wait for ourselves (it hung once). */
static void test_same_chunk_twice(void **state)
{
	fixture *fx = *state;
	qsv_server *s = qsv_server_new(64 << 20, 0, &fx->log);
	qsv_version *v = open_version(s, fx->qst);
	qs_piece p[3];
	assert_int_equal(qs_map(v->c, QS_VIEW_HIGH, 0, 0, 16, p, 1), 1);
	p[1] = p[0];
	p[2] = p[0];
	qsv_entry *e[3];
	assert_int_equal(qsv_fetch(v, QS_VIEW_HIGH, 0, p, 3, e), 0);
	assert_ptr_equal(e[0], e[2]);
	for (int i = 0; i < 3; i++)
		qsv_cache_put(s->cache, e[i]);
	qsv_version_unref(v);
	qsv_server_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_equal_qs_read),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_buffer_reuse),
		cmocka_unit_test(test_span_pool),
		cmocka_unit_test(test_window_capped_by_cache),
		cmocka_unit_test(test_single_flight),
		cmocka_unit_test(test_loading_wait),
		cmocka_unit_test(test_eviction_under_pinning),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_prefetch_runs),
		cmocka_unit_test(test_version_swap),
		cmocka_unit_test(test_same_chunk_twice),
	};
	return cmocka_run_group_tests_name("serve", tests, setup, teardown);
}
