/*
 * reader.c - decoding chunks, and qs_read: map a range (map.c), read each
 * chunk's span, decode it, checking its XXH3 before a byte of it is
 * returned.  The last decoded chunk is kept, for small sequential reads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>
#include <zstd.h>

#include "container.h"

struct qs_reader {
	qs_container *c;
	const qs_dec_kernels *k;
	qs_dec_scratch *ds;
	ZSTD_DCtx *zd;
	uint8_t *part;          /* qs_read only: both parts of one chunk as read from disk */
	uint8_t *scratch;       /* decode_quant's other face, chunks up to KEEP_SCRATCH */
	uint8_t *out;           /* qs_read only: the last decoded chunk */
	uint64_t have_key;      /* key of the chunk in out, or UINT64_MAX */
	size_t have_len;
	/* the row scales of one weight chunk, gathered from the scale stream's
	 * chunks through buffers of their own (allocated on first use): a
	 * weight chunk's span and codes are in part/q meanwhile */
	uint32_t *rows;
	size_t rows_cap;
	uint8_t *sc_part, *sc_out;   /* sized to the scale chunks met so far */
	size_t sc_part_cap, sc_out_cap;
	uint64_t sc_key;        /* key of the scale chunk in sc_out, or UINT64_MAX */
	uint8_t *low;           /* qs_reader_lowbuf: lowface.c's (a chunk's INT4 group maxima) */
	size_t low_cap;
	uint8_t *run;           /* derived_runs: one run of codes */
	size_t run_cap;
	XXH3_state_t *xxh;      /* derived_runs: the hash of a chunk's runs */
};

qs_reader *qs_reader_new(qs_container *c, qs_error *err)
{
	qs_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		qs_fail(err, ENOMEM, "%s: out of memory for a reader", c->path);
		return NULL;
	}
	r->c = c;
	r->k = c->kernels;
	r->have_key = UINT64_MAX;
	r->sc_key = UINT64_MAX;
	/* calloc: its tables are large (the bucket-table cache alone ~1.8 MiB)
	 * and zero means empty, so pages nobody uses are never touched (a
	 * daemon makes a reader for every decode beyond its idle pool) */
	r->ds = calloc(1, sizeof(*r->ds));
	r->zd = ZSTD_createDCtx();
	if (!r->ds || !r->zd) {
		qs_fail(err, ENOMEM, "%s: out of memory for a reader (%llu-byte chunks)", c->path,
			(unsigned long long)c->ix->max_chunk_bytes);
		qs_reader_free(r);
		return NULL;
	}
	return r;   /* qcache: every entry's valid is 0 already */
}

void qs_reader_free(qs_reader *r)
{
	if (!r)
		return;
	free(r->ds);
	ZSTD_freeDCtx(r->zd);
	free(r->part);
	free(r->scratch);
	free(r->out);
	free(r->rows);
	free(r->sc_part);
	free(r->sc_out);
	free(r->low);
	free(r->run);
	XXH3_freeState(r->xxh);
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
		return f ? r->k->fsym(r->ds, f, p + 1, len - 1, out, n / f->esize) : -1;
	default:
		return -1;
	}
}

static ssize_t fail(qs_reader *r, const qs_piece *p, const char *file, const char *what, qs_error *err)
	__attribute__((cold));
static ssize_t fail(qs_reader *r, const qs_piece *p, const char *file, const char *what, qs_error *err)
{
	return qs_piece_error(r->c, p, file, EIO, what, err);
}

static const uint32_t *row_scales(qs_reader *r, const qs_stream *w, uint64_t e0, size_t ne, const char *file,
				  qs_error *err);

/* A generated chunk: copied from memory, checked like a stored one. */
static ssize_t decode_mem(qs_reader *r, const qs_stream *s, const qs_piece *p, uint8_t *out, const char *file,
			  qs_error *err)
{
	size_t n = qs_chunk_elems(s, p->chunk);
	memcpy(out, s->mem + p->chunk * s->chunk_elems, n);
	if (XXH3_64bits(out, n) != s->mem_hash[p->chunk])
		return fail(r, p, file, "checksum mismatch in a generated chunk", err);
	return (ssize_t)n;
}

/* *B grown to N bytes (and one more), exact and not zeroed (qs_grow would
 * clear the pages it adds): every byte is written before it is read, and a
 * daemon makes readers often. */
static uint8_t *kept_buf(qs_reader *r, uint8_t **b, size_t *cap, size_t n, qs_error *err)
{
	if (n + 1 > *cap) {
		uint8_t *nb = realloc(*b, n + 1);
		if (!nb) {
			qs_fail(err, ENOMEM, "%s: out of memory for a %zu-element chunk", r->c->path, n);
			return NULL;
		}
		*b = nb;
		*cap = n + 1;
	}
	return *b;
}

/* Scratch for one face of a chunk that the caller did not ask for (the
 * codes under the floats of QRES, the floats under the codes of QDRV).  Up
 * to 1 MiB it is kept with the reader; larger ones are allocated per chunk
 * and dropped (scratch_done), so idle readers never hold chunk-sized memory. */
#define KEEP_SCRATCH (1u << 20)
static uint8_t *scratch_buf(qs_reader *r, size_t n)
{
	if (n > KEEP_SCRATCH)
		return malloc(n);
	if (!r->scratch)
		r->scratch = malloc(KEEP_SCRATCH);
	return r->scratch;
}

static void scratch_done(qs_reader *r, uint8_t *b)
{
	if (b != r->scratch)
		free(b);
}

/* QCODE, QTUP or RAW codes, then (HIGH) the residual given them. */
static ssize_t stored_codes(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, int8_t *q,
			    uint8_t *out, const char *file, qs_error *err)
{
	const qs_chunk *ch = &r->c->ix->chunks[s->first_chunk + p->chunk];
	uint64_t e0 = p->chunk * s->chunk_elems;
	size_t ne = qs_chunk_elems(s, p->chunk), bytes = ne * s->esize;
	int bad = span[0] == QS_CODEC_RAW ? decode_bytes(r, NULL, span, ch->len_a, (uint8_t *)q, ne)
		: qs_dec_codes(r->k, r->ds, span, ch->len_a, q, ne);
	if (bad)
		return fail(r, p, file, "malformed INT8 codes", err);
	/* the codes are served only by the INT8 face; the high face's bytes,
	 * which damaged codes would change, are checked against hash_b below */
	if (p->face == QS_FACE_Q)
		return XXH3_64bits(q, ne) == ch->hash_a ? (ssize_t)ne
			: fail(r, p, file, "checksum mismatch in INT8 codes", err);
	const uint32_t *scales = row_scales(r, s, e0, ne, file, err);
	if (!scales)
		return -1;
	const uint8_t *pb = span + ch->len_a;
	bad = pb[0] == QS_CODEC_RAW ? decode_bytes(r, NULL, pb, ch->len_b, out, bytes)
		: pb[0] == QS_CODEC_QRES ? r->k->qres(r->ds, qs_fmt_info(s->fmt), pb + 1, ch->len_b - 1, q, ne, e0,
						      s->cols, scales, out) : -1;
	if (bad || XXH3_64bits(out, bytes) != ch->hash_b)
		return fail(r, p, file, bad ? "malformed residual" : "checksum mismatch in residual", err);
	return (ssize_t)bytes;
}

/* QDRV: the floats of P's chunk (FSYM or RAW part B) into HI; 0 or -1. */
static int derived_floats(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, uint8_t *hi,
			  const char *file, qs_error *err)
{
	const qs_chunk *ch = &r->c->ix->chunks[s->first_chunk + p->chunk];
	const uint8_t *pb = span + ch->len_a;
	int bad = ch->len_a != 1 || (pb[0] != QS_CODEC_RAW && pb[0] != QS_CODEC_FSYM)
		|| decode_bytes(r, qs_fmt_info(s->fmt), pb, ch->len_b, hi, qs_chunk_elems(s, p->chunk) * s->esize);
	return bad ? (int)fail(r, p, file, "malformed floats", err) : 0;
}

/* QDRV: the floats into HI, then (Q) the codes from them. */
static ssize_t derived_codes(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, uint8_t *hi,
			     int8_t *q, const char *file, qs_error *err)
{
	const qs_chunk *ch = &r->c->ix->chunks[s->first_chunk + p->chunk];
	uint64_t e0 = p->chunk * s->chunk_elems;
	size_t ne = qs_chunk_elems(s, p->chunk), bytes = ne * s->esize;
	if (derived_floats(r, s, p, span, hi, file, err))
		return -1;
	/* the floats are served only by the high face; the INT8 face's codes,
	 * which damaged floats would change, are checked against hash_a below */
	if (p->face != QS_FACE_Q)
		return XXH3_64bits(hi, bytes) == ch->hash_b ? (ssize_t)bytes
			: fail(r, p, file, "checksum mismatch in floats", err);
	const uint32_t *scales = row_scales(r, s, e0, ne, file, err);
	if (!scales)
		return -1;
	r->k->derive(qs_fmt_info(s->fmt), hi, ne, e0, s->cols, scales, q);
	if (XXH3_64bits(q, ne) != ch->hash_a)
		return fail(r, p, file, "checksum mismatch in INT8 codes derived from the floats", err);
	return (ssize_t)ne;
}

/* A QUANT chunk: OUT gets the face asked for; the other one, when decoding
 * needs it, goes to scratch. */
static ssize_t decode_quant(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, uint8_t *out,
			    const char *file, qs_error *err)
{
	size_t ne = qs_chunk_elems(s, p->chunk);
	int derived = span[0] == QS_CODEC_QDRV, want_q = p->face == QS_FACE_Q;
	uint8_t *other = NULL;
	if (derived == want_q && !(other = scratch_buf(r, derived ? ne * s->esize : ne)))
		return qs_fail(err, ENOMEM, "%s: out of memory for a %zu-element chunk", r->c->path, ne);
	ssize_t rc = derived ? derived_codes(r, s, p, span, want_q ? other : out, (int8_t *)out, file, err)
		: stored_codes(r, s, p, span, want_q ? (int8_t *)out : (int8_t *)other, out, file, err);
	if (other)
		scratch_done(r, other);
	return rc;
}

static ssize_t decode_piece(qs_reader *r, const qs_piece *p, const void *span_in, void *out_in, const char *file,
			    qs_error *err)
{
	const qs_index *ix = r->c->ix;
	const uint8_t *span = span_in;
	uint8_t *out = out_in;
	if (p->stream >= ix->n_streams || p->face >= QS_N_FACES)
		return fail(r, p, file, "no such chunk", err);
	const qs_stream *s = &ix->streams[p->stream];
	unsigned bits = qs_face_bits((int)p->face);
	if (p->chunk >= s->n_chunks || (p->face != QS_FACE_HIGH && s->kind != QS_STREAM_QUANT)
	    || (bits && (!(ix->low_views >> bits & 1) || !qs_low_ok(s, bits))))
		return fail(r, p, file, "no such chunk", err);
	if (out != r->out)
		r->have_key = UINT64_MAX;   /* scratch is about to change */
	if (s->kind == QS_STREAM_MEM)
		return decode_mem(r, s, p, out, file, err);
	if (bits)
		return qs_decode_low(r, s, p, span, out, file, err);
	if (s->kind == QS_STREAM_QUANT)
		return decode_quant(r, s, p, span, out, file, err);
	const qs_chunk *ch = &ix->chunks[s->first_chunk + p->chunk];
	size_t bytes = qs_chunk_elems(s, p->chunk) * s->esize;
	if (decode_bytes(r, qs_fmt_info(s->fmt), span, ch->len_a, out, bytes))
		return fail(r, p, file, "malformed data", err);
	if (XXH3_64bits(out, bytes) != ch->hash_a)
		return fail(r, p, file, "checksum mismatch", err);
	return (ssize_t)bytes;
}

/* The codes of a QDRV chunk derived run by run into a small buffer, each
 * given to EACH while it is in the first-level cache, and hashed as they
 * go: the whole chunk's codes never exist at once.  What EACH wrote is the
 * caller's to discard when the hash then fails. */
static int derived_runs(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, qs_codes_fn each,
			void *ctx, const char *file, qs_error *err)
{
	const qs_chunk *ch = &r->c->ix->chunks[s->first_chunk + p->chunk];
	uint64_t e0 = p->chunk * s->chunk_elems;
	size_t ne = qs_chunk_elems(s, p->chunk);
	/* whole rows a run (row_scales' index moves by rows), or the chunk */
	size_t step = e0 % s->cols ? ne : s->cols >= QS_CODE_RUN ? (size_t)s->cols : QS_CODE_RUN / s->cols * s->cols;
	step = step < ne ? step : ne;
	int8_t *run = (int8_t *)kept_buf(r, &r->run, &r->run_cap, step, err);
	if (!run)
		return -1;
	if (!r->xxh && !(r->xxh = XXH3_createState()))
		return qs_fail(err, ENOMEM, "%s: out of memory for a hash state", r->c->path);
	uint8_t *hi = scratch_buf(r, ne * s->esize);
	if (!hi)
		return qs_fail(err, ENOMEM, "%s: out of memory for a %zu-element chunk", r->c->path, ne);
	const uint32_t *scales = NULL;
	int rc = derived_floats(r, s, p, span, hi, file, err) || !(scales = row_scales(r, s, e0, ne, file, err))
		|| XXH3_64bits_reset(r->xxh) != XXH_OK ? -1 : 0;
	for (size_t i = 0; !rc && i < ne; i += step) {
		size_t n = ne - i < step ? ne - i : step;
		r->k->derive(qs_fmt_info(s->fmt), hi + i * s->esize, n, e0 + i, s->cols, scales + i / s->cols, run);
		XXH3_64bits_update(r->xxh, run, n);
		rc = each(ctx, run, i, n);
	}
	if (!rc && XXH3_64bits_digest(r->xxh) != ch->hash_a)
		rc = (int)fail(r, p, file, "checksum mismatch in INT8 codes derived from the floats", err);
	scratch_done(r, hi);
	return rc;
}

int qs_reader_each_codes(qs_reader *r, const qs_piece *p, const uint8_t *span, qs_codes_fn each, void *ctx,
			 const char *file, qs_error *err)
{
	const qs_stream *s = &r->c->ix->streams[p->stream];
	if (span[0] == QS_CODEC_QDRV)
		return derived_runs(r, s, p, span, each, ctx, file, err);
	/* stored codes decode as one: checked before EACH sees any of them */
	size_t ne = qs_chunk_elems(s, p->chunk);
	int8_t *q = (int8_t *)scratch_buf(r, ne);
	if (!q)
		return qs_fail(err, ENOMEM, "%s: out of memory for a %zu-element chunk", r->c->path, ne);
	qs_piece pq = *p;
	pq.face = QS_FACE_Q;
	int rc = stored_codes(r, s, &pq, span, q, NULL, file, err) < 0 ? -1 : each(ctx, q, 0, ne);
	scratch_done(r, (uint8_t *)q);
	return rc;
}

const uint32_t *qs_reader_row_scales(qs_reader *r, const qs_stream *w, uint64_t e0, size_t ne, const char *file,
				     qs_error *err)
{
	return row_scales(r, w, e0, ne, file, err);
}

qs_container *qs_reader_container(qs_reader *r)
{
	return r->c;
}

const qs_dec_kernels *qs_reader_kernels(qs_reader *r)
{
	return r->k;
}

uint8_t *qs_reader_lowbuf(qs_reader *r, size_t n, qs_error *err)
{
	return kept_buf(r, &r->low, &r->low_cap, n, err);
}

/* Every caller sized OUT from p->decoded_size: a decode that disagrees with
 * the index is refused here, once for all of them. */
ssize_t qs_decode_piece(qs_reader *r, const qs_piece *p, const void *span, void *out, const char *file,
			qs_error *err)
{
	ssize_t n = decode_piece(r, p, span, out, file, err);
	if (n >= 0 && (uint64_t)n != p->decoded_size)
		return fail(r, p, file, "decoded size differs from the index", err);
	return n;
}

/* The decoded chunk of P in r->out (kept for the next read). */
static const uint8_t *decode_chunk(qs_reader *r, const qs_piece *p, const char *file, qs_error *err)
{
	if (r->have_key == p->key)
		return r->out;
	r->have_key = UINT64_MAX;
	if ((!r->part && !(r->part = malloc(r->c->ix->max_parts_bytes + 1)))
	    || (!r->out && !(r->out = malloc(r->c->ix->max_chunk_bytes + 1)))) {
		qs_fail(err, ENOMEM, "%s: out of memory for a reader (%llu-byte chunks)", r->c->path,
			(unsigned long long)r->c->ix->max_chunk_bytes);
		return NULL;
	}
	if (qs_read_span(r->c, p, r->part, file, err))
		return NULL;
	ssize_t n = qs_decode_piece(r, p, r->part, r->out, file, err);
	if (n < 0)
		return NULL;
	r->have_key = p->key;
	r->have_len = (size_t)n;
	return r->out;
}

/* One chunk of a scale stream in r->sc_out (kept: consecutive weight chunks
 * usually share it). */
static const uint8_t *scale_chunk(qs_reader *r, uint64_t si, uint64_t k, const char *file, qs_error *err)
{
	const qs_index *ix = r->c->ix;
	const qs_stream *s = &ix->streams[si];
	qs_piece p = { .key = qs_chunk_key(ix, s, QS_FACE_HIGH, k), .stream = (uint32_t)si, .face = QS_FACE_HIGH, .chunk = k };
	if (r->sc_key == p.key)
		return r->sc_out;
	const qs_chunk *ch = &ix->chunks[s->first_chunk + k];
	size_t out_bytes = qs_chunk_elems(s, k) * s->esize;
	if (qs_grow((void **)&r->sc_part, &r->sc_part_cap, ch->len_a + 1, 1)
	    || qs_grow((void **)&r->sc_out, &r->sc_out_cap, out_bytes + 1, 1)) {
		qs_fail(err, ENOMEM, "%s: out of memory for the scales of '%s'", r->c->path, s->name);
		return NULL;
	}
	p.span_off = ch->off;
	p.span_len = ch->len_a;
	p.decoded_size = out_bytes;
	r->sc_key = UINT64_MAX;
	if (qs_read_span(r->c, &p, r->sc_part, file, err) || qs_decode_piece(r, &p, r->sc_part, r->sc_out, file, err) < 0)
		return NULL;
	r->sc_key = p.key;
	return r->sc_out;
}

/* The scales of the rows that elements [e0, e0 + ne) of weight stream W
 * touch, as bits: only those rows are decoded, so what a read allocates is
 * bounded by the chunk size, whatever row count the scale stream claims. */
static const uint32_t *row_scales(qs_reader *r, const qs_stream *w, uint64_t e0, size_t ne, const char *file,
				  qs_error *err)
{
	const qs_stream *s = &r->c->ix->streams[w->scale_stream];
	const qs_fmtinfo *f = qs_fmt_info(s->fmt);
	uint64_t r0 = e0 / w->cols, r1 = (e0 + ne - 1) / w->cols;   /* ne >= 1: a chunk is never empty */
	if (qs_grow((void **)&r->rows, &r->rows_cap, (size_t)(r1 - r0 + 1), sizeof(uint32_t))) {
		qs_fail(err, ENOMEM, "%s: out of memory for the scales of '%s'", r->c->path, s->name);
		return NULL;
	}
	for (uint64_t row = r0; row <= r1;) {
		uint64_t k = row / s->chunk_elems, end = (k + 1) * s->chunk_elems;
		const uint8_t *c = scale_chunk(r, (uint64_t)w->scale_stream, k, file, err);
		if (!c)
			return NULL;
		for (; row <= r1 && row < end; row++)
			r->rows[row - r0] = qs_load(f, c + (row - k * s->chunk_elems) * s->esize);
	}
	return r->rows;
}

ssize_t qs_read(qs_reader *r, qs_view view, size_t file, uint64_t off, void *buf, size_t len, qs_error *err)
{
	const qs_index *ix = r->c->ix;
	if ((unsigned)view >= QS_N_VIEWS || file >= ix->n_files[view])
		return qs_fail(err, EINVAL, "%s: no file %zu in the %s view", r->c->path, file,
			       (unsigned)view < QS_N_VIEWS ? qs_view_name(view) : "?");
	const char *path = ix->files[view][file].path;
	uint8_t *out = buf;
	qs_piece p[64];
	size_t done = 0, n;
	while (done < len && (n = qs_map(r->c, view, file, off + done, len - done, p, 64))) {
		for (size_t i = 0; i < n; i++) {
			const uint8_t *d = decode_chunk(r, &p[i], path, err);
			if (!d)
				return -1;
			memcpy(out + (p[i].file_off - off), d + p[i].chunk_off, p[i].len);
			done += p[i].len;
		}
	}
	return (ssize_t)done;
}
