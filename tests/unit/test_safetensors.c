/* test_safetensors.c - the header validator accepts what the reference reader
 * accepts and refuses, with a message naming file and tensor, what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../codec/common/safetensors.h"

static int parse(const char *json, uint64_t data_bytes, qs_error *e)
{
	qs_st_file f;
	size_t n = strlen(json);
	int rc = qs_st_parse("x.safetensors", (const uint8_t *)json, n, 8 + n + data_bytes, &f, e);
	if (!rc)
		qs_st_free(&f);
	return rc;
}

static void test_valid(void **state)
{
	(void)state;
	qs_error e;
	qs_st_file f;
	const char *js = "  {\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
			 "\"__metadata__\":{\"format\":\"pt\"},"
			 "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[12,16]},"
			 "\"z\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[16,16]},"
			 "\"u\":{\"dtype\":\"F4_E2M1\",\"shape\":[3],\"data_offsets\":[16,19]}}   ";
	assert_int_equal(qs_st_parse("x", (const uint8_t *)js, strlen(js), 8 + strlen(js) + 19, &f, &e), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.t[0].name, "b");
	assert_int_equal(f.t[1].ndim, 0);
	assert_int_equal(f.t[3].dsize, 0);   /* unknown dtype accepted, size unchecked */
	assert_non_null(f.metadata);
	qs_st_free(&f);
}

static void expect_fail(const char *json, uint64_t data, const char *needle)
{
	qs_error e = { 0 };
	assert_int_equal(parse(json, data, &e), -1);
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' lacks '%s'", e.msg, needle);
	assert_non_null(strstr(e.msg, "x.safetensors"));
}

static void test_invalid(void **state)
{
	(void)state;
	expect_fail("not json", 0, "not valid JSON");
	expect_fail("[1,2]", 0, "not a JSON object");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "gap");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'a'");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 9, "trailing");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, "non-negative");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 0, "begin <= end");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, "data_offsets");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows");
	expect_fail("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
	expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		    "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "JSON");
}

static void test_header_len(void **state)
{
	(void)state;
	qs_error e;
	uint8_t b[8] = { 0 };
	uint64_t n;
	assert_int_equal(qs_st_header_len("x.safetensors", b, 5, &n, &e), -1);
	wr64(b, 100000001ull);
	assert_int_equal(qs_st_header_len("x.safetensors", b, 1ull << 40, &n, &e), -1);
	assert_non_null(strstr(e.msg, "100,000,000"));
	wr64(b, 500);
	assert_int_equal(qs_st_header_len("x.safetensors", b, 300, &n, &e), -1);
	assert_non_null(strstr(e.msg, "truncated"));
	wr64(b, 16);
	assert_int_equal(qs_st_header_len("x.safetensors", b, 24, &n, &e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_header_len),
	};
	return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
