/*
 * fuzz_container.c - libFuzzer target for the container reader: the input is
 * a whole container file, opened with or without lower views.  Opening must
 * refuse it cleanly or succeed; every
 * read must then return bytes or an error, never crash, hang or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string.h>
#include <xxhash.h>

#include "qstore.h"

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Recompute the header, index and trailer hashes (when the offsets make
 * sense) so that mutations reach the manifest and table validation instead
 * of stopping at a checksum: half the inputs are fixed up, half not. */
static void fix_hashes(uint8_t *d, size_t n)
{
	if (n < 192)
		return;
	wr64(d + 56, XXH3_64bits(d, 56));
	uint8_t *t = d + n - 128;
	uint64_t moff = rd64(t + 24);
	if (moff >= 64 && moff <= n - 128)
		wr64(t + 80, XXH3_64bits(d + moff, n - 128 - moff));
	wr64(t + 16, n);
	wr64(t + 120, XXH3_64bits(t, 120));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.qst", MFD_CLOEXEC);
	uint8_t *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (size && (data[size / 2] & 1))
		fix_hashes(copy, size);
	ssize_t w = fd >= 0 ? write(fd, copy, size) : -1;
	free(copy);
	if (fd < 0 || w != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	qs_error e;
	/* the lower views (generated at open from the INT8 view) on half the
	 * inputs: their headers, JSON and packed faces meet the damage too */
	unsigned low = size && (data[size / 3] & 2) ? QS_OPEN_INT(4) | QS_OPEN_INT(3) : 0;
	qs_container *c = qs_open_ex(path, QS_OPEN_SINGLE_FILE | low, &e);
	if (c) {
		qs_reader *r = qs_reader_new(c, &e);
		static uint8_t buf[1 << 16];
		for (int v = 0; r && v < QS_N_VIEWS; v++)
			for (size_t i = 0; i < qs_file_count(c, (qs_view)v) && i < 8; i++)
				/* the first MiB of each file: bounded work per input */
				for (uint64_t off = 0; off < (1u << 20); off += sizeof(buf))
					if (qs_read(r, (qs_view)v, i, off, buf, sizeof(buf), &e) <= 0)
						break;
		qs_reader_free(r);
		char *j = qs_info_json(c, &e);
		free(j);
		qs_close(c);
	}
	close(fd);
	return 0;
}
