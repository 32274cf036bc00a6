/*
 * open.c - opening a container: the fixed header and trailer, the index they
 * point at (checked by hash, then table by table), and the per-view names.
 * Nothing of the tensor data is read here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../common/format.h"
#include "container.h"

static qs_container *container_alloc(const char *path, qs_error *err)
{
	qs_container *c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		qs_fail(err, ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	c->fd = -1;
	c->single[0] = c->single[1] = -1;
	c->kernels = qs_dec_select();
	return c;
}

qs_container *qs_container_wrap(qs_index *ix, int fd, const char *path, qs_error *err)
{
	qs_container *c = container_alloc(path, err);
	if (!c)
		return NULL;
	c->fd = fd;
	c->ix = ix;
	qs_index_assign_keys(ix);
	return c;
}

/* The header and trailer; on success *t holds the trailer. */
static int check_ends(qs_container *c, uint64_t size, uint8_t t[QS_TRAILER_SIZE], qs_error *err)
{
	uint8_t hd[QS_HEADER_SIZE];
	const char *p = c->path;
	if (size < QS_HEADER_SIZE + QS_TRAILER_SIZE)
		return qs_fail(err, EIO, "%s: not a qstore container (%llu bytes: truncated)", p, (unsigned long long)size);
	if (qs_pread_full(c->fd, hd, sizeof(hd), 0) || qs_pread_full(c->fd, t, QS_TRAILER_SIZE, size - QS_TRAILER_SIZE))
		return qs_fail(err, EIO, "%s: read error: %s", p, strerror(errno));
	if (memcmp(hd + QS_HD_MAGIC, QS_HEADER_MAGIC, 8))
		return qs_fail(err, EINVAL, "%s: not a qstore container (bad magic)", p);
	uint32_t ver = rd32(hd + QS_HD_VERSION);
	if (ver == 1)   /* 4-state rANS, qstore 0.1.x */
		return qs_fail(err, EINVAL, "%s: container format version 1 is not supported (this qstore reads versions "
			       "%d to %d): unpack it with qstore 0.1 and pack the result again", p,
			       QSTORE_CONTAINER_FORMAT_OLDEST, QS_FORMAT_VERSION);
	/* versions 2 and 3 are version 4 without QDRV and QTUP parts: read as they are */
	if (ver < QSTORE_CONTAINER_FORMAT_OLDEST || ver > QS_FORMAT_VERSION)
		return qs_fail(err, EINVAL, "%s: container format version %u is not supported (this qstore reads versions "
			       "%d to %d)", p, ver, QSTORE_CONTAINER_FORMAT_OLDEST, QS_FORMAT_VERSION);
	if (rd64(hd + QS_HD_HASH) != XXH3_64bits(hd, QS_HD_HASH))
		return qs_fail(err, EIO, "%s: damaged header (checksum mismatch)", p);
	if (memcmp(t + QS_TR_MAGIC, QS_TRAILER_MAGIC, 8) || rd64(t + QS_TR_HASH) != XXH3_64bits(t, QS_TR_HASH))
		return qs_fail(err, EIO, "%s: truncated or damaged container: no valid trailer at the end", p);
	if (rd32(t + QS_TR_VERSION) != ver || rd32(t + QS_TR_SIZE) != QS_TRAILER_SIZE)
		return qs_fail(err, EINVAL, "%s: trailer version %u is not supported", p, rd32(t + QS_TR_VERSION));
	if (rd64(t + QS_TR_CONTAINER_SIZE) != size)
		return qs_fail(err, EIO, "%s: container is %llu bytes but its trailer records %llu (truncated or extended)",
			       p, (unsigned long long)size, (unsigned long long)rd64(t + QS_TR_CONTAINER_SIZE));
	return 0;
}

static void parse_tables(qs_index *ix, const uint8_t *tab, uint64_t nch, uint64_t nex)
{
	for (uint64_t i = 0; i < nch; i++) {
		const uint8_t *r = tab + i * QS_CHUNK_REC;
		ix->chunks[i] = (qs_chunk){ rd64(r + QS_CR_OFF), rd32(r + QS_CR_LEN_A), rd32(r + QS_CR_LEN_B),
					    rd64(r + QS_CR_HASH_A), rd64(r + QS_CR_HASH_B) };
	}
	for (uint64_t i = 0; i < nex; i++) {
		const uint8_t *r = tab + nch * QS_CHUNK_REC + i * QS_EXTENT_REC;
		ix->extents[i] = (qs_extent){ rd64(r + QS_ER_FILE_OFF), rd64(r + QS_ER_LEN), rd32(r + QS_ER_STREAM),
					      rd32(r + QS_ER_FACE), rd64(r + QS_ER_STREAM_OFF) };
	}
}

/* The index bytes [manifest_off, trailer): hash, manifest, tables. */
static int load_index(qs_container *c, uint64_t size, const uint8_t *tr, qs_error *err)
{
	const char *p = c->path;
	uint64_t moff = rd64(tr + QS_TR_MANIFEST_OFF), mlen = rd64(tr + QS_TR_MANIFEST_LEN);
	uint64_t mraw = rd64(tr + QS_TR_MANIFEST_RAW), coff = rd64(tr + QS_TR_CHUNKS_OFF);
	uint64_t nch = rd64(tr + QS_TR_N_CHUNKS), eoff = rd64(tr + QS_TR_EXTENTS_OFF), nex = rd64(tr + QS_TR_N_EXTENTS);
	uint64_t tstart = size - QS_TRAILER_SIZE, cbytes, ebytes, x;
	if (moff < QS_HEADER_SIZE || add_ovf(moff, mlen, &x) || x != coff || mul_ovf(nch, QS_CHUNK_REC, &cbytes)
	    || add_ovf(coff, cbytes, &x) || x != eoff || mul_ovf(nex, QS_EXTENT_REC, &ebytes)
	    || add_ovf(eoff, ebytes, &x) || x != tstart || mraw > QS_MAX_MANIFEST || !mlen)
		return qs_fail(err, EIO, "%s: damaged trailer: index sections out of range", p);
	uint64_t ilen = tstart - moff;
	uint8_t *idx = malloc(ilen ? ilen : 1);
	char *man = malloc(mraw + 1);
	int rc = -1;
	if (!idx || !man) {
		qs_fail(err, ENOMEM, "%s: out of memory for a %llu-byte index", p, (unsigned long long)ilen);
		goto out;
	}
	if (qs_pread_full(c->fd, idx, ilen, moff)) {
		qs_fail(err, EIO, "%s: read error in the index", p);
		goto out;
	}
	if (XXH3_64bits(idx, ilen) != rd64(tr + QS_TR_INDEX_HASH)) {
		qs_fail(err, EIO, "%s: damaged index (checksum mismatch)", p);
		goto out;
	}
	size_t got = ZSTD_decompress(man, mraw, idx, mlen);
	if (ZSTD_isError(got) || got != mraw) {
		qs_fail(err, EIO, "%s: damaged manifest (zstd: %s)", p, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size");
		goto out;
	}
	qs_index *ix = &c->own;
	c->ix = ix;
	c->owns_index = 1;
	if (qs_manifest_load(ix, man, mraw, nch, nex, p, err))
		goto out;
	ix->chunks = calloc(nch ? nch : 1, sizeof(qs_chunk));
	ix->extents = calloc(nex ? nex : 1, sizeof(qs_extent));
	if (!ix->chunks || !ix->extents) {
		qs_fail(err, ENOMEM, "%s: out of memory", p);
		goto out;
	}
	parse_tables(ix, idx + mlen, nch, nex);
	ix->container_bytes = size;
	rc = qs_index_validate(ix, QS_HEADER_SIZE, moff, p, err);
	qs_index_assign_keys(ix);
out:
	free(idx);
	free(man);
	return rc;
}

qs_container *qs_open_ex(const char *path, unsigned flags, qs_error *err)
{
	qs_container *c = container_alloc(path, err);
	struct stat st;
	uint8_t tr[QS_TRAILER_SIZE];
	if (!c)
		return NULL;
	c->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0) {
		qs_fail(err, errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(c->fd, &st) || !S_ISREG(st.st_mode)) {
		qs_fail(err, EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	if (check_ends(c, (uint64_t)st.st_size, tr, err) || load_index(c, (uint64_t)st.st_size, tr, err)
	    || qs_low_views_init(c, flags, err) || qs_single_files_init(c, flags & QS_OPEN_SINGLE_FILE, err))
		goto fail;
	qs_index_fit(c->ix);
	return c;
fail:
	qs_close(c);
	return NULL;
}

qs_container *qs_open(const char *path, qs_error *err)
{
	return qs_open_ex(path, 0, err);
}

void qs_close(qs_container *c)
{
	if (!c)
		return;
	for (int v = 0; v < QS_N_VIEWS; v++)
		free(c->single_why[v]);
	qs_low_views_free(c);
	if (c->owns_index)
		qs_index_free(&c->own);
	if (c->fd >= 0 && c->owns_index)
		close(c->fd);
	free(c->path);
	free(c);
}
