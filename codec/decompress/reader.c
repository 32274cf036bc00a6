/*
 * reader.c - opening a container and reading any byte range of any file of
 * either view.  A read maps the range onto extents (binary search), each
 * extent onto chunks (division: chunks of a stream have a fixed size) and
 * decodes only those chunks, checking each one's XXH3 before a byte of it is
 * returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../common/codecs.h"
#include "../common/container.h"
#include "../common/format.h"

struct qs_reader {
	qs_container *c;
	qs_dec_scratch *ds;
	ZSTD_DCtx *zd;
	uint8_t *part;          /* both parts of one chunk as read from disk */
	int8_t *q;
	uint8_t *out;
	int have;               /* one decoded chunk is kept for small sequential reads */
	uint64_t have_stream, have_chunk;
	int have_face;
	size_t have_len;
};


/* ---- opening ----------------------------------------------------------- */

static qs_container *container_alloc(const char *path, qs_error *err)
{
	qs_container *c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		qs_fail(err, ENOMEM, "%s: out of memory", path);
		return NULL;
	}
	c->fd = -1;
	pthread_mutex_init(&c->scale_lock, NULL);
	return c;
}

static int alloc_scales(qs_container *c, qs_error *err)
{
	c->n_scales = c->ix->n_streams;
	c->scales = calloc(c->n_scales ? c->n_scales : 1, sizeof(*c->scales));
	return c->scales ? 0 : qs_fail(err, ENOMEM, "%s: out of memory", c->path);
}

qs_container *qs_container_wrap(qs_index *ix, int fd, const char *path, qs_error *err)
{
	qs_container *c = container_alloc(path, err);
	if (!c)
		return NULL;
	c->fd = fd;
	c->ix = ix;
	if (alloc_scales(c, err)) {
		c->fd = -1;
		qs_close(c);
		return NULL;
	}
	return c;
}

static int load_index(qs_container *c, uint64_t size, qs_error *err)
{
	uint8_t hd[QS_HEADER_SIZE], tr[QS_TRAILER_SIZE];
	const char *p = c->path;
	if (size < QS_HEADER_SIZE + QS_TRAILER_SIZE)
		return qs_fail(err, EIO, "%s: not a qstore container (%llu bytes: truncated)", p, (unsigned long long)size);
	if (qs_pread_full(c->fd, hd, sizeof(hd), 0) || qs_pread_full(c->fd, tr, sizeof(tr), size - QS_TRAILER_SIZE))
		return qs_fail(err, EIO, "%s: read error: %s", p, strerror(errno));
	if (memcmp(hd, QS_HEADER_MAGIC, 8))
		return qs_fail(err, EINVAL, "%s: not a qstore container (bad magic)", p);
	if (rd32(hd + 8) != QS_FORMAT_VERSION)
		return qs_fail(err, EINVAL, "%s: container format version %u is not supported (this qstore reads version %d)",
			       p, rd32(hd + 8), QS_FORMAT_VERSION);
	if (rd64(hd + 56) != XXH3_64bits(hd, 56))
		return qs_fail(err, EIO, "%s: damaged header (checksum mismatch)", p);
	if (memcmp(tr, QS_TRAILER_MAGIC, 8) || rd64(tr + 120) != XXH3_64bits(tr, 120))
		return qs_fail(err, EIO, "%s: truncated or damaged container: no valid trailer at the end", p);
	if (rd32(tr + 8) != QS_FORMAT_VERSION || rd32(tr + 12) != QS_TRAILER_SIZE)
		return qs_fail(err, EINVAL, "%s: trailer version %u is not supported", p, rd32(tr + 8));
	if (rd64(tr + 16) != size)
		return qs_fail(err, EIO, "%s: container is %llu bytes but its trailer records %llu (truncated or extended)",
			       p, (unsigned long long)size, (unsigned long long)rd64(tr + 16));
	uint64_t moff = rd64(tr + 24), mlen = rd64(tr + 32), mraw = rd64(tr + 40);
	uint64_t coff = rd64(tr + 48), nch = rd64(tr + 56), eoff = rd64(tr + 64), nex = rd64(tr + 72);
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
	if (XXH3_64bits(idx, ilen) != rd64(tr + 80)) {
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
	for (uint64_t i = 0; i < nch; i++) {
		const uint8_t *r = idx + mlen + i * QS_CHUNK_REC;
		ix->chunks[i] = (qs_chunk){ rd64(r), rd32(r + 8), rd32(r + 12), rd64(r + 16), rd64(r + 24) };
	}
	for (uint64_t i = 0; i < nex; i++) {
		const uint8_t *r = idx + mlen + cbytes + i * QS_EXTENT_REC;
		ix->extents[i] = (qs_extent){ rd64(r), rd64(r + 8), rd32(r + 16), rd32(r + 20), rd64(r + 24) };
	}
	ix->container_bytes = size;
	rc = qs_index_validate(ix, QS_HEADER_SIZE, moff, p, err);
out:
	free(idx);
	free(man);
	return rc;
}

qs_container *qs_open(const char *path, qs_error *err)
{
	qs_container *c = container_alloc(path, err);
	struct stat st;
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
	if (load_index(c, (uint64_t)st.st_size, err) || alloc_scales(c, err))
		goto fail;
	return c;
fail:
	qs_close(c);
	return NULL;
}

void qs_close(qs_container *c)
{
	if (!c)
		return;
	if (c->scales)
		for (size_t i = 0; i < c->n_scales; i++)
			free(c->scales[i]);
	free(c->scales);
	if (c->owns_index)
		qs_index_free(&c->own);
	if (c->fd >= 0 && c->owns_index)
		close(c->fd);
	pthread_mutex_destroy(&c->scale_lock);
	free(c->path);
	free(c);
}

const char *qs_container_path(const qs_container *c) { return c->path; }

/* ---- readers ----------------------------------------------------------- */

qs_reader *qs_reader_new(qs_container *c)
{
	qs_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->c = c;
	r->ds = malloc(sizeof(*r->ds));
	r->zd = ZSTD_createDCtx();
	r->part = malloc(c->ix->max_parts_bytes + 1);
	r->q = malloc(c->ix->max_chunk_bytes + 1);
	r->out = malloc(c->ix->max_chunk_bytes + 1);
	if (!r->ds || !r->zd || !r->part || !r->q || !r->out) {
		qs_reader_free(r);
		return NULL;
	}
	qs_qtab_cache_reset(&r->ds->qcache);
	return r;
}

void qs_reader_free(qs_reader *r)
{
	if (!r)
		return;
	free(r->ds);
	ZSTD_freeDCtx(r->zd);
	free(r->part);
	free(r->q);
	free(r->out);
	free(r);
}

/* Decode a RAW or ZSTD part of exactly n bytes; FSYM too when f is given. */
static int decode_bytes(qs_reader *r, const qs_fmtinfo *f, const uint8_t *p, size_t len, uint8_t *out, size_t n)
{
	switch (p[0]) {
	case QS_CODEC_RAW:
		if (len - 1 != n)
			return -1;
		memcpy(out, p + 1, n);
		return 0;
	case QS_CODEC_ZSTD: {
		size_t got = ZSTD_decompressDCtx(r->zd, out, n, p + 1, len - 1);
		return ZSTD_isError(got) || got != n ? -1 : 0;
	}
	case QS_CODEC_FSYM:
		return f ? qs_dec_fsym(r->ds, f, p + 1, len - 1, out, n / f->esize) : -1;
	default:
		return -1;
	}
}

static int chunk_fail(qs_reader *r, uint64_t si, uint64_t k, const char *file, const char *what, qs_error *err)
	__attribute__((cold));
static int chunk_fail(qs_reader *r, uint64_t si, uint64_t k, const char *file, const char *what, qs_error *err)
{
	return qs_fail(err, EIO, "%s: file '%s': tensor '%s': chunk %llu (#%llu): %s", r->c->path,
		       file ? file : "-", qs_stream_name(r->c->ix, si), (unsigned long long)k,
		       (unsigned long long)(r->c->ix->streams[si].first_chunk + k), what);
}

static const uint32_t *get_scales(qs_reader *r, uint64_t si, const char *file, qs_error *err);

static size_t chunk_elems_of(const qs_stream *s, uint64_t k)
{
	uint64_t e0 = k * s->chunk_elems;
	return (size_t)(s->elems - e0 < s->chunk_elems ? s->elems - e0 : s->chunk_elems);
}

void qs_chunk_span(const qs_container *c, uint32_t si, uint32_t face, uint64_t k, uint64_t *off, size_t *len)
{
	const qs_stream *s = &c->ix->streams[si];
	if (s->kind == QS_STREAM_MEM) {
		*off = 0;
		*len = 0;
		return;
	}
	const qs_chunk *ch = &c->ix->chunks[s->first_chunk + k];
	*off = ch->off;
	*len = ch->len_a + (s->kind == QS_STREAM_QUANT && face == QS_FACE_HIGH ? ch->len_b : 0);
}

uint64_t qs_chunk_decoded_size(const qs_container *c, uint32_t si, uint32_t face, uint64_t k)
{
	const qs_stream *s = &c->ix->streams[si];
	return chunk_elems_of(s, k) * qs_face_esize(s, (int)face);
}

uint64_t qs_max_chunk_bytes(const qs_container *c)
{
	return c->ix->max_chunk_bytes;
}

/* Decode face FACE of chunk K of stream SI from SPAN (the bytes of
 * qs_chunk_span) into OUT, verifying its checksum.  A HIGH decode of a QUANT
 * chunk decodes the codes into r->q first. */
static ssize_t decode_span(qs_reader *r, uint64_t si, uint64_t k, int face, const uint8_t *span, uint8_t *out,
			   const char *file, qs_error *err)
{
	const qs_index *ix = r->c->ix;
	const qs_stream *s = &ix->streams[si];
	uint64_t e0 = k * s->chunk_elems;
	size_t ne = chunk_elems_of(s, k), bytes = ne * s->esize;
	if (s->kind == QS_STREAM_MEM) {
		memcpy(out, s->mem + e0, ne);
		return (ssize_t)ne;
	}
	const qs_chunk *ch = &ix->chunks[s->first_chunk + k];
	const qs_fmtinfo *f = qs_fmt_info(s->fmt);
	if (s->kind != QS_STREAM_QUANT) {
		if (decode_bytes(r, f, span, ch->len_a, out, bytes))
			return chunk_fail(r, si, k, file, "malformed data", err);
		if (XXH3_64bits(out, bytes) != ch->hash_a)
			return chunk_fail(r, si, k, file, "checksum mismatch", err);
		return (ssize_t)bytes;
	}
	int8_t *q = face == QS_FACE_Q ? (int8_t *)out : r->q;
	int bad = span[0] == QS_CODEC_RAW ? decode_bytes(r, NULL, span, ch->len_a, (uint8_t *)q, ne)
		: span[0] == QS_CODEC_QCODE ? qs_dec_qcode(r->ds, span + 1, ch->len_a - 1, q, ne) : -1;
	if (bad || XXH3_64bits(q, ne) != ch->hash_a)
		return chunk_fail(r, si, k, file, bad ? "malformed INT8 codes" : "checksum mismatch in INT8 codes", err);
	if (face == QS_FACE_Q)
		return (ssize_t)ne;
	const uint32_t *scales = get_scales(r, (uint64_t)s->scale_stream, file, err);
	if (!scales)
		return -1;
	const uint8_t *pb = span + ch->len_a;
	bad = pb[0] == QS_CODEC_RAW ? decode_bytes(r, NULL, pb, ch->len_b, out, bytes)
		: pb[0] == QS_CODEC_QRES ? qs_dec_qres(r->ds, f, pb + 1, ch->len_b - 1, q, ne, e0, s->cols,
						       scales + e0 / s->cols, out) : -1;
	if (bad || XXH3_64bits(out, bytes) != ch->hash_b)
		return chunk_fail(r, si, k, file, bad ? "malformed residual" : "checksum mismatch in residual", err);
	return (ssize_t)bytes;
}

ssize_t qs_decode_span(qs_reader *r, uint32_t stream, uint32_t face, uint64_t chunk, const void *span, void *out,
		       const char *file, qs_error *err)
{
	r->have = 0;   /* scratch buffers may be reused */
	return decode_span(r, stream, chunk, (int)face, span, out, file, err);
}

/* Read and decode face FACE of chunk K of stream SI into r->out, keeping the
 * last chunk for small sequential reads. */
static const uint8_t *decode_chunk(qs_reader *r, uint64_t si, uint64_t k, int face, size_t *len,
				   const char *file, qs_error *err)
{
	if (r->have && r->have_stream == si && r->have_chunk == k && r->have_face == face) {
		*len = r->have_len;
		return r->out;
	}
	r->have = 0;
	uint64_t off;
	size_t rlen;
	qs_chunk_span(r->c, (uint32_t)si, (uint32_t)face, k, &off, &rlen);
	int e = rlen ? qs_pread_full(r->c->fd, r->part, rlen, off) : 0;
	if (e) {
		qs_fail(err, EIO, "%s: file '%s': tensor '%s': chunk %llu: backing read error: %s", r->c->path,
			file ? file : "-", r->c->ix->streams[si].name, (unsigned long long)k, strerror(-e));
		return NULL;
	}
	ssize_t n = decode_span(r, si, k, face, r->part, r->out, file, err);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	r->have = 1;
	r->have_stream = si;
	r->have_chunk = k;
	r->have_face = face;
	r->have_len = *len;
	return r->out;
}

/* Copy LEN bytes at OFF of a face of stream SI into BUF. */
static int read_stream(qs_reader *r, uint64_t si, int face, uint64_t off, uint8_t *buf, uint64_t len,
		       const char *file, qs_error *err)
{
	const qs_stream *s = &r->c->ix->streams[si];
	uint64_t cb = s->chunk_elems * qs_face_esize(s, face);
	while (len) {
		uint64_t k = off / cb, in = off % cb;
		size_t clen;
		const uint8_t *d = decode_chunk(r, si, k, face, &clen, file, err);
		if (!d)
			return -1;
		if (in >= clen)
			return chunk_fail(r, si, k, file, "range beyond the chunk", err);
		uint64_t n = clen - in < len ? clen - in : len;
		memcpy(buf, d + in, n);
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Row scales of a QUANT stream, decoded once per container. */
static const uint32_t *get_scales(qs_reader *r, uint64_t si, const char *file, qs_error *err)
{
	qs_container *c = r->c;
	uint32_t *sc;
	pthread_mutex_lock(&c->scale_lock);
	if ((sc = c->scales[si])) {
		pthread_mutex_unlock(&c->scale_lock);
		return sc;
	}
	const qs_stream *s = &c->ix->streams[si];
	const qs_fmtinfo *f = qs_fmt_info(s->fmt);
	uint8_t *raw = malloc(s->elems * s->esize + 1);
	sc = malloc(s->elems * sizeof(uint32_t) + 1);
	if (!raw || !sc) {
		qs_fail(err, ENOMEM, "%s: out of memory for the scales of '%s'", c->path, s->name);
	} else if (!read_stream(r, si, QS_FACE_HIGH, 0, raw, s->elems * s->esize, file, err)) {
		for (uint64_t i = 0; i < s->elems; i++)
			sc[i] = qs_load(f, raw + i * s->esize);
		c->scales[si] = sc;
	}
	free(raw);
	if (c->scales[si] != sc) {
		free(sc);
		sc = NULL;
	}
	pthread_mutex_unlock(&c->scale_lock);
	r->have = 0;
	return sc;
}

ssize_t qs_read(qs_reader *r, qs_view view, size_t file, uint64_t off, void *buf, size_t len, qs_error *err)
{
	const qs_index *ix = r->c->ix;
	if ((unsigned)view > 1 || file >= ix->n_files[view])
		return qs_fail(err, EINVAL, "%s: no file %zu in the %s view", r->c->path, file, view ? "int8" : "high");
	const char *path = ix->files[view][file].path;
	uint8_t *out = buf;
	qs_piece p[64];
	size_t done = 0, n;
	/* the mapping qs_map gives a daemon, decoded here chunk by chunk */
	while (done < len && (n = qs_map(r->c, view, file, off + done, len - done, p, 64))) {
		for (size_t i = 0; i < n; i++) {
			size_t clen;
			const uint8_t *d = decode_chunk(r, p[i].stream, p[i].chunk, (int)p[i].face, &clen, path, err);
			if (!d)
				return -1;
			if (p[i].chunk_off + p[i].len > clen)
				return chunk_fail(r, p[i].stream, p[i].chunk, path, "range beyond the chunk", err);
			memcpy(out + (p[i].file_off - off), d + p[i].chunk_off, p[i].len);
			done += p[i].len;
		}
	}
	return (ssize_t)done;
}
