/*
 * test_ns.c - the namespace without FUSE: a rescan shows each container as
 * NAME/ with its views, reports what changed when one is replaced or
 * removed, keeps an old version's inodes for whoever still holds them, and
 * logs a bad container once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>

#include "qstore.h"
#include "testutil.h"
#include "../../fs/ns.h"

/* One safetensors file of one 32x64 BF16 weight (values from SEED). */
static void pack_model(const char *dir, const char *out, unsigned seed)
{
	char src[4200], path[4300];
	snprintf(src, sizeof(src), "%s/src%u", dir, seed);
	mkdir(src, 0755);
	uint16_t w[32 * 64];
	for (unsigned i = 0; i < 32 * 64; i++)
		w[i] = (uint16_t)(0x3c00 + ((i * 40503u + seed) % 256));
	tt_tensor t = { "proj.weight", "BF16", 2, { 32, 64 }, w, sizeof(w) };
	snprintf(path, sizeof(path), "%s/model.safetensors", src);
	tt_write_st(path, &t, 1, NULL);
	qs_error e = { 0 };
	qs_pack_options o = { .threads = 1 };
	if (qs_pack(src, out, &o, NULL, &e)) {
		fprintf(stderr, "%s\n", e.msg);
		abort();
	}
}

typedef struct names { char buf[16][64]; int n; } names;

static int collect(void *ctx, const char *name, uint64_t ino, int is_dir, uint64_t next)
{
	(void)ino; (void)is_dir; (void)next;
	names *n = ctx;
	if (n->n < 16)
		snprintf(n->buf[n->n++], 64, "%s", name);
	return 0;
}

static uint64_t lookup(qfs_ns *ns, uint64_t parent, const char *name)
{
	qfs_attr a;
	return qfs_ns_lookup(ns, parent, name, &a) ? 0 : (uint64_t)a.st.st_ino;
}

static int has_change(const qfs_changes *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->names[i], name))
			return 1;
	return 0;
}

static void test_tree_and_changes(void **state)
{
	(void)state;
	char *dir = tt_tmpdir(), back[4200], a[4300], b[4300], tmp[4300];
	snprintf(back, sizeof(back), "%s/back", dir);
	mkdir(back, 0755);
	snprintf(a, sizeof(a), "%s/a.qst", back);
	snprintf(b, sizeof(b), "%s/b.qst", back);
	pack_model(dir, a, 1);
	pack_model(dir, b, 2);
	tt_write_file(strcat(strcpy(tmp, back), "/junk.qst"), "not a container", 15);
	qsv_log log;
	qsv_log_init(&log, QSV_INFO);
	char *logbuf = NULL;
	size_t loglen = 0;
	log.out = open_memstream(&logbuf, &loglen);
	qsv_server *s = qsv_server_new(16 << 20, 0, &log);
	qfs_ns *ns = qfs_ns_new(s, &log, back, 0);
	qfs_changes ch;
	qfs_ns_rescan(ns, &ch);
	assert_int_equal(ch.n, 0);
	qfs_changes_free(&ch);

	names n = { .n = 0 };
	assert_int_equal(qfs_ns_readdir(ns, QFS_INO_ROOT, 0, collect, &n), 0);
	assert_int_equal(n.n, 5);   /* . .. .qstorefs a b: junk is not shown */
	assert_string_equal(n.buf[2], ".qstorefs");
	assert_string_equal(n.buf[3], "a");
	assert_string_equal(n.buf[4], "b");
	uint64_t ia = lookup(ns, QFS_INO_ROOT, "a"), ib = lookup(ns, QFS_INO_ROOT, "b");
	assert_true(ia && ib && ia != ib);
	uint64_t single = lookup(ns, ia, "model-bf16.safetensors"), i8 = lookup(ns, ia, "int8");
	assert_true(single && i8 && lookup(ns, i8, "model.safetensors") && lookup(ns, ia, "bf16"));
	assert_int_equal(qfs_ns_isdir(ns, single), -ENOTDIR);
	qfs_attr at;
	assert_int_equal(qfs_ns_getattr(ns, single, &at), 0);
	assert_true(at.st.st_size > 0 && S_ISREG(at.st.st_mode));

	/* replace b, remove a: both reported; a stays readable through the
	 * inode the kernel still holds */
	uint64_t ib_file = lookup(ns, ib, "model-bf16.safetensors");
	snprintf(tmp, sizeof(tmp), "%s/new.qst", dir);
	pack_model(dir, tmp, 3);
	assert_int_equal(rename(tmp, b), 0);
	unlink(a);
	qfs_ns_rescan(ns, &ch);
	assert_true(has_change(&ch, "a") && has_change(&ch, "b"));
	assert_int_equal(ch.n, 2);
	qfs_changes_free(&ch);
	assert_int_equal(lookup(ns, QFS_INO_ROOT, "a"), 0);
	uint64_t ib2 = lookup(ns, QFS_INO_ROOT, "b");
	assert_true(ib2 && ib2 != ib);   /* a new version: new inodes */
	qsv_version *v;
	int view;
	size_t file;
	assert_int_equal(qfs_ns_open(ns, ib_file, &v, &view, &file), 0);   /* the old file still opens */
	qsv_version_unref(v);
	qfs_ns_forget(ns, ib_file, 1);
	qfs_ns_forget(ns, ib, 1);
	assert_int_equal(qfs_ns_open(ns, ib_file, &v, &view, &file), -ENOENT);

	/* a rescan with nothing changed reports nothing; the junk is logged once */
	qfs_ns_rescan(ns, &ch);
	assert_int_equal(ch.n, 0);
	qfs_changes_free(&ch);
	fflush(log.out);
	const char *first = strstr(logbuf, "junk.qst: not shown");
	assert_non_null(first);
	assert_null(strstr(first + 1, "junk.qst: not shown"));

	qfs_ns_free(ns);
	qsv_server_free(s);
	fclose(log.out);
	free(logbuf);
	tt_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_and_changes),
	};
	return cmocka_run_group_tests_name("namespace", tests, NULL, NULL);
}
