/*
 * test_crafted.c - hostile containers: a valid container re-written with
 * crafted manifest values and table entries (lengths and offsets near 2^32
 * and 2^64, counts whose products overflow, paths with '/', '..', NUL or 4 KiB
 * of bytes), with every hash recomputed so that only the validation stands
 * between them and the reader.  Each must be refused by name, never crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <xxhash.h>
#include <zstd.h>

#include "qstore.h"
#include "testutil.h"
#include "../../codec/common/format.h"
#include "../../codec/common/internal.h"
#include "../../codec/decompress/container.h"

static uint8_t *orig;
static size_t orig_len;

typedef struct parts {
	char *man;            /* manifest text (JSON Lines) */
	uint8_t *tabs;        /* chunk table + extent table */
	size_t tabs_len;
	uint64_t nch, nex, moff;
} parts;

static void split(parts *p)
{
	const uint8_t *t = orig + orig_len - QS_TRAILER_SIZE;
	p->moff = rd64(t + 24);
	uint64_t mlen = rd64(t + 32), mraw = rd64(t + 40);
	p->nch = rd64(t + 56);
	p->nex = rd64(t + 72);
	p->man = malloc(mraw + 1);
	assert_int_equal(ZSTD_decompress(p->man, mraw, orig + p->moff, mlen), mraw);
	p->man[mraw] = 0;
	p->tabs_len = (size_t)(p->nch * QS_CHUNK_REC + p->nex * QS_EXTENT_REC);
	p->tabs = malloc(p->tabs_len + 1);
	memcpy(p->tabs, orig + p->moff + mlen, p->tabs_len);
}

/* Reassemble with valid hashes; n_chunks / n_extents may be overridden. */
static const char *assemble(const parts *p, uint64_t nch, uint64_t nex)
{
	static char path[64];
	size_t ml = strlen(p->man), cap = ZSTD_compressBound(ml);
	uint8_t *z = malloc(cap);
	size_t zl = ZSTD_compress(z, cap, p->man, ml, 1);
	size_t total = p->moff + zl + p->tabs_len + QS_TRAILER_SIZE;
	uint8_t *f = malloc(total), *t = f + total - QS_TRAILER_SIZE;
	memcpy(f, orig, p->moff);
	memcpy(f + p->moff, z, zl);
	memcpy(f + p->moff + zl, p->tabs, p->tabs_len);
	memset(t, 0, QS_TRAILER_SIZE);
	memcpy(t, QS_TRAILER_MAGIC, 8);
	wr32(t + 8, QS_FORMAT_VERSION);
	wr32(t + 12, QS_TRAILER_SIZE);
	wr64(t + 16, total);
	wr64(t + 24, p->moff); wr64(t + 32, zl); wr64(t + 40, ml);
	wr64(t + 48, p->moff + zl); wr64(t + 56, nch);
	wr64(t + 64, p->moff + zl + p->nch * QS_CHUNK_REC); wr64(t + 72, nex);
	wr64(t + 80, XXH3_64bits(f + p->moff, zl + p->tabs_len));
	wr64(t + 120, XXH3_64bits(t, 120));
	snprintf(path, sizeof(path), "/tmp/qs-crafted-%d.qst", (int)getpid());
	tt_write_file(path, f, total);
	free(z);
	free(f);
	return path;
}

/* Replace the first occurrence of FROM by TO in the manifest. */
static void edit(parts *p, const char *from, const char *to)
{
	char *at = strstr(p->man, from);
	assert_non_null(at);
	size_t fl = strlen(from), tl = strlen(to), ml = strlen(p->man);
	char *n = malloc(ml - fl + tl + 1);
	memcpy(n, p->man, (size_t)(at - p->man));
	memcpy(n + (at - p->man), to, tl);
	strcpy(n + (at - p->man) + tl, at + fl);
	free(p->man);
	p->man = n;
}

/* The container must be refused at open, or every read must fail cleanly. */
static void expect_refused(const char *path, const char *needle)
{
	qs_error e = { 0 };
	qs_container *c = qs_open(path, &e);
	if (c) {
		qs_close(c);
		fail_msg("crafted container was accepted (wanted '%s')", needle);
	}
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
	unlink(path);
}

static void test_manifest_values(void **state)
{
	(void)state;
	static const struct { const char *from, *to, *needle; } cases[] = {
		{ "\"elems\":", "\"elems\":4611686018427387904,\"x\":", "stream" },          /* x esize overflows */
		{ "\"chunk_elems\":", "\"chunk_elems\":0,\"x\":", "stream" },
		{ "\"chunk_elems\":", "\"chunk_elems\":4294967296,\"x\":", "stream" },       /* chunk > 16 MiB */
		{ "\"first_chunk\":", "\"first_chunk\":9223372036854775807,\"x\":", "stream" },
		{ "\"chunks\":", "\"chunks\":4294967295,\"x\":", "stream" },
		{ "\"kind\":", "\"kind\":7,\"x\":", "stream" },
		{ "\"fmt\":", "\"fmt\":99,\"x\":", "stream" },
		{ "\"first_extent\":", "\"first_extent\":18446744073709551615,\"x\":", "manifest" },
		{ "\"extents\":", "\"extents\":9223372036854775807,\"x\":", "extent range" },
		{ "\"size\":", "\"size\":9223372036854775807,\"x\":", "cover" },
		{ "\"path\":\"", "\"path\":\"../escape\",\"x\":\"", "bad path" },
		{ "\"path\":\"", "\"path\":\"/abs\",\"x\":\"", "bad path" },
		{ "\"path\":\"", "\"path\":\"a/../b\",\"x\":\"", "bad path" },
		{ "\"path\":\"", "\"path\":\"a//b\",\"x\":\"", "bad path" },
		{ "\"path\":\"", "\"path\":\"a\\u0000b\",\"x\":\"", "line" },
		{ "\"streams\":", "\"streams\":1099511627776,\"x\":", "counts" },
		{ "\"tensors\":", "\"tensors\":4294967296,\"x\":", "counts" },
		{ "\"version\":1", "\"version\":2", "version" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parts p;
		split(&p);
		edit(&p, cases[i].from, cases[i].to);
		expect_refused(assemble(&p, p.nch, p.nex), cases[i].needle);
		free(p.man);
		free(p.tabs);
	}
	/* a 4 KiB path */
	parts p;
	split(&p);
	char *big = malloc(4200 + 64);
	strcpy(big, "\"path\":\"");
	memset(big + 8, 'a', 4100);
	strcpy(big + 8 + 4100, "\",\"x\":\"");
	edit(&p, "\"path\":\"", big);
	expect_refused(assemble(&p, p.nch, p.nex), "bad path");
	free(big);
	free(p.man);
	free(p.tabs);
}

static void test_table_values(void **state)
{
	(void)state;
	/* chunk records: offset, lengths; extent records: lengths, stream, face */
	static const struct { int table, field, width; uint64_t value; const char *needle; } cases[] = {
		{ 0, 0, 8, 0xFFFFFFFFFFFFFF00ull, "stream" },   /* chunk off near 2^64 */
		{ 0, 0, 8, 0, "stream" },                       /* inside the header */
		{ 0, 8, 4, 0xFFFFFFFFu, "stream" },             /* len_a near 2^32 */
		{ 0, 12, 4, 0xFFFFFFF0u, "stream" },            /* len_b on a non-QUANT stream */
		{ 1, 8, 8, 0xFFFFFFFFFFFFFFF0ull, "extent" },   /* extent len near 2^64 */
		{ 1, 16, 4, 0xFFFFFFFFu, "extent" },            /* stream id */
		{ 1, 20, 4, 1, "extent" },                      /* Q face of a BLOB */
		{ 1, 24, 8, 0x7FFFFFFFFFFFFFFFull, "extent" },  /* stream_off */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parts p;
		split(&p);
		uint8_t *rec = p.tabs + (cases[i].table ? p.nch * QS_CHUNK_REC : 0) + (size_t)cases[i].field;
		if (cases[i].width == 8)
			wr64(rec, cases[i].value);
		else
			wr32(rec, (uint32_t)cases[i].value);
		expect_refused(assemble(&p, p.nch, p.nex), cases[i].needle);
		free(p.man);
		free(p.tabs);
	}
	/* counts in the trailer whose byte sizes overflow */
	parts p;
	split(&p);
	expect_refused(assemble(&p, 1ull << 60, p.nex), "trailer");
	expect_refused(assemble(&p, p.nch, (1ull << 59) + 1), "trailer");
	free(p.man);
	free(p.tabs);
}

/* Records that alias or overlap, and view paths that make a file a
 * directory too: each field is valid on its own, only the cross-checks
 * refuse them (issue: a read of one file returned another stream's bytes). */
static void test_aliasing(void **state)
{
	(void)state;
	parts p;
	split(&p);
	edit(&p, "\"first_chunk\":4,", "\"first_chunk\":3,");      /* model.scalar on odd_int8_buffer's record */
	expect_refused(assemble(&p, p.nch, p.nex), "shares chunk record");
	free(p.man);
	free(p.tabs);

	split(&p);
	wr64(p.tabs + 1 * QS_CHUNK_REC, rd64(p.tabs));                /* record 1 at record 0's bytes */
	expect_refused(assemble(&p, p.nch, p.nex), "overlap");
	free(p.man);
	free(p.tabs);

	split(&p);
	wr64(p.tabs + 1 * QS_CHUNK_REC, rd64(p.tabs) + 1);            /* record 1 inside record 0 */
	expect_refused(assemble(&p, p.nch, p.nex), "overlap");
	free(p.man);
	free(p.tabs);

	/* "model", "model-0000*", "model/t": a sibling sorts between the file and its child */
	split(&p);
	edit(&p, "\"path\":\"config.json\"", "\"path\":\"model\"");
	edit(&p, "\"path\":\"tokenizer.json\"", "\"path\":\"model/t\"");
	expect_refused(assemble(&p, p.nch, p.nex), "as a directory");
	free(p.man);
	free(p.tabs);
}

/* Generated chunks (the merged views' headers) are checked like stored ones:
 * a byte changed in memory after open is EIO naming the chunk, not served. */
static void test_generated_chunk_checked(void **state)
{
	(void)state;
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(QS_GOLDEN, QS_OPEN_SINGLE_FILE, &e);
	assert_non_null(c);
	ssize_t sf = qs_single_file(c, QS_VIEW_HIGH, NULL);
	assert_true(sf >= 0);
	qs_reader *r = qs_reader_new(c, &e);
	uint8_t good[64], got[64];
	assert_int_equal(qs_read(r, QS_VIEW_HIGH, (size_t)sf, 0, good, sizeof(good), &e), sizeof(good));
	qs_reader_free(r);
	int flipped = 0;
	for (size_t i = 0; i < c->ix->n_streams; i++)
		if (c->ix->streams[i].kind == QS_STREAM_MEM && c->ix->streams[i].elems > 20) {
			c->ix->streams[i].mem[20] ^= 0x20;
			flipped++;
		}
	assert_true(flipped >= 1);
	r = qs_reader_new(c, &e);
	memset(&e, 0, sizeof(e));
	assert_int_equal(qs_read(r, QS_VIEW_HIGH, (size_t)sf, 0, got, sizeof(got), &e), -1);
	assert_non_null(strstr(e.msg, "generated chunk"));
	qs_reader_free(r);
	qs_close(c);
}

static int setup(void **state)
{
	(void)state;
	orig = tt_read(QS_GOLDEN, &orig_len);
	return orig ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest_values),
		cmocka_unit_test(test_table_values),
		cmocka_unit_test(test_aliasing),
		cmocka_unit_test(test_generated_chunk_checked),
	};
	return cmocka_run_group_tests_name("crafted", tests, setup, NULL);
}
