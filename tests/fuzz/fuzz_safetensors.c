/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors header validator:
 * the input is a whole safetensors file (8-byte length, JSON, data).
 */
#include <stdint.h>
#include <string.h>

#include "../../codec/common/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	qs_error e;
	uint64_t n;
	if (size < 8 || qs_st_header_len("fuzz.safetensors", data, size, &n, &e))
		return 0;
	qs_st_file f;
	if (!qs_st_parse("fuzz.safetensors", data + 8, (size_t)n, size, &f, &e))
		qs_st_free(&f);
	return 0;
}
