/*
 * dispatch.c - choosing the decoder kernels once per reader.
 *
 * The portable kernels always; the AVX-512 set (QCODE, QTUP, 16-bit FSYM and
 * QRES in vectors of eight states, QDRV's quantiser sixteen floats at a
 * time, the INT4 view's packing 64 codes at a time) where cpuid and the OS
 * allow it.  Every set must decode every part
 * to the same bytes (test_codec runs each one).  The
 * environment variable QSTORE_SIMD names a set to force (the tests run each
 * set the machine has); an unknown or unavailable name falls back to the
 * best available, never to a set the CPU cannot run.
 */
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "qstore.h"

static const qs_dec_kernels SCALAR = { "scalar", qs_dec_fsym, qs_dec_qcode, qs_dec_qtup, qs_dec_qres,
				      qs_quantise_scalar, qs_low_max4, qs_low_pack4 };
static const qs_dec_kernels AVX512 = { "avx512", qs_dec_fsym_avx512, qs_dec_qcode_avx512, qs_dec_qtup_avx512,
				      qs_dec_qres_avx512, qs_quantise_avx512, qs_low_max4_avx512, qs_low_pack4_avx512 };

typedef struct kset {
	const qs_dec_kernels *k;
	int (*usable)(void);
} kset;

static int always(void) { return 1; }

/* libgcc's cpuid test also checks that the OS saves the 512-bit state */
static int has_avx512(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
		&& __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
}

/* worst first: the last usable one is the default */
static const kset SETS[] = { { &SCALAR, always }, { &AVX512, has_avx512 } };
#define N_SETS (sizeof(SETS) / sizeof(SETS[0]))

size_t qs_dec_available(const qs_dec_kernels **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < N_SETS && n < max; i++)
		if (SETS[i].usable())
			out[n++] = SETS[i].k;
	return n;
}

const qs_dec_kernels *qs_dec_select(void)
{
	const qs_dec_kernels *av[N_SETS];
	size_t n = qs_dec_available(av, N_SETS);
	const char *want = getenv("QSTORE_SIMD");
	for (size_t i = 0; want && i < n; i++)
		if (!strcmp(av[i]->name, want))
			return av[i];
	return av[n - 1];
}

int qs_dec_codes(const qs_dec_kernels *k, qs_dec_scratch *s, const uint8_t *p, size_t len, int8_t *q, size_t n)
{
	if (!len)
		return -1;
	return p[0] == QS_CODEC_QCODE ? k->qcode(s, p + 1, len - 1, q, n)
		: p[0] == QS_CODEC_QTUP ? k->qtup(s, p + 1, len - 1, q, n) : -1;
}

const char *qs_decoder_kernels(void)
{
	return qs_dec_select()->name;
}
