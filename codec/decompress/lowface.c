/*
 * lowface.c - the faces of a quantised chunk that the lower views serve
 * (FORMAT.md section 7), computed from its INT8 codes and row scales alone:
 *
 *   PACK(n)   the chunk's rows of n-bit codes, each row packed into 32-bit
 *             little-endian words as compressed-tensors' pack_to_int32 does
 *             (code + 2^(n-1) at bit i*n of the row, zero padding);
 *   SCALE(n)  their scales: per group of QS_INT4_GROUP codes for n = 4, per
 *             row otherwise.
 *
 * INT4's scales need each group's largest |code|, so its scale face would
 * decode the codes a second time; instead a decode keeps each chunk's maxima
 * (1/128 of its codes) with the container, up to QS_GMAX_BUDGET, and the
 * scale face (read after the codes in every layout) decodes nothing.  A
 * scale face has no span: when the maxima are not there (read first, or the
 * budget spent) it reads the codes' bytes itself, so a read of scales never
 * reads codes it does not need.  The maxima come from checked codes and are
 * checked again (XXH3) whenever they are used.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <xxhash.h>

#include "container.h"

#define QS_GMAX_BUDGET (64ull << 20)

struct qs_gmax {
	uint64_t hash;          /* XXH3-64 of m[0..n) */
	size_t n;
	uint8_t m[];
};

static struct qs_gmax *kept(const qs_container *c, const qs_stream *s, uint64_t k)
{
	struct qs_gmax *_Atomic *a = atomic_load_explicit(&((qs_container *)c)->gmax, memory_order_acquire);
	return a ? atomic_load_explicit(&a[s->first_chunk + k], memory_order_acquire) : NULL;
}

static const uint8_t *kept_max(const qs_container *c, const qs_stream *s, uint64_t k, size_t n, int *damaged)
{
	struct qs_gmax *g = kept(c, s, k);
	if (!g)
		return NULL;
	*damaged = g->n != n || XXH3_64bits(g->m, n) != g->hash;
	return *damaged ? NULL : g->m;
}

/* The per-chunk slots, made by the first thread that keeps maxima. */
static struct qs_gmax *_Atomic *slots(qs_container *c)
{
	struct qs_gmax *_Atomic *a = atomic_load_explicit(&c->gmax, memory_order_acquire), *_Atomic *none = NULL;
	if (a)
		return a;
	a = calloc(c->ix->n_chunks ? c->ix->n_chunks : 1, sizeof(*a));
	if (a && !atomic_compare_exchange_strong(&c->gmax, &none, a)) {
		free(a);
		a = none;   /* another thread's */
	}
	return a;
}

static void keep_max(qs_container *c, const qs_stream *s, uint64_t k, const uint8_t *m, size_t n)
{
	struct qs_gmax *_Atomic *a = slots(c), *_Atomic *slot = a ? &a[s->first_chunk + k] : NULL;
	uint64_t cost = sizeof(struct qs_gmax) + n;
	if (!slot || atomic_load_explicit(slot, memory_order_relaxed))
		return;
	if (atomic_fetch_add(&c->gmax_bytes, cost) + cost > QS_GMAX_BUDGET) {
		atomic_fetch_sub(&c->gmax_bytes, cost);
		return;
	}
	struct qs_gmax *g = malloc(cost), *none = NULL;
	if (g) {
		g->n = n;
		memcpy(g->m, m, n);
		g->hash = XXH3_64bits(m, n);
	}
	if (!g || !atomic_compare_exchange_strong(slot, &none, g)) {
		free(g);   /* another thread kept the same maxima first */
		atomic_fetch_sub(&c->gmax_bytes, cost);
	}
}

void qs_low_max4(const int8_t *q, size_t ne, uint8_t *gm)
{
	for (size_t g = 0; g < ne / QS_INT4_GROUP; g++) {
		const int8_t *x = q + g * QS_INT4_GROUP;
		int hi = 0;
		for (int i = 0; i < QS_INT4_GROUP; i++) {
			int a = x[i] < 0 ? -x[i] : x[i];
			hi = a > hi ? a : hi;
		}
		gm[g] = (uint8_t)hi;   /* |code| <= 128 */
	}
}

/* rne(q * 7 / m) for a group of 128 codes.  q*7 and m are exact binary32
 * values and a tie is exactly representable, so one correctly rounded
 * division followed by round-half-even of the quotient gives the exact
 * result (a quotient that is not a tie lies at least 1/256 from one, far
 * more than its rounding error).  Straight-line, so it vectorises. */
static void codes4(const int8_t *x, unsigned m, int8_t *c)
{
	const float big = 12582912.0f;   /* 1.5 * 2^23: rounds to an integer, ties to even */
	float fm = (float)(m ? m : 1), k = m ? 7.0f : 0.0f;
	for (int i = 0; i < QS_INT4_GROUP; i++)
		c[i] = (int8_t)(int)((((float)x[i] * k) / fm + big) - big);
}

void qs_low_pack4(const int8_t *q, size_t ne, const uint8_t *gm, uint8_t *out)
{
	int8_t c[QS_INT4_GROUP];
	for (size_t g = 0; g < ne / QS_INT4_GROUP; g++) {
		uint8_t *o = out + g * QS_INT4_GROUP / 2;
		codes4(q + g * QS_INT4_GROUP, gm[g], c);
		for (int i = 0; i < QS_INT4_GROUP / 2; i++)
			o[i] = (uint8_t)((c[2 * i] + 8) | (c[2 * i + 1] + 8) << 4);
	}
}

/* Eight offset codes of n bits, one per byte of X, as the 8n-bit string
 * code 0 first (SWAR: pairs, then quads, then the two halves). */
static inline uint64_t pack8(uint64_t x, unsigned n)
{
	x = (x & 0x00ff00ff00ff00ffull) | ((x & 0xff00ff00ff00ff00ull) >> (8 - n));
	x = (x & 0x0000ffff0000ffffull) | ((x & 0xffff0000ffff0000ull) >> (16 - 2 * n));
	return (x & 0xffffffffull) | ((x >> 32) << (4 * n));
}

/* GROUPS groups of 8 offset codes U into n bytes each (8n bits).  A group
 * is stored as 8 bytes, over the places of the groups after it, which their
 * stores overwrite; the last groups, whose 8 bytes would pass the end of
 * the GROUPS * n written here, copy only their n. */
static void pack_groups(const uint8_t *u, size_t groups, unsigned n, uint8_t *out)
{
	size_t end = groups * n;
	for (size_t g = 0; g < groups; g++) {
		uint64_t v = pack8(rd64(u + 8 * g), n);
		if (g * n + 8 <= end)
			wr64(out + g * n, v);
		else
			memcpy(out + g * n, &v, n);   /* little-endian: the low n bytes */
	}
}

/* n bits per channel, for a block of 256 codes: rne(q / 2^(8-n)) clamped to
 * [-2^(n-1), 2^(n-1) - 1], plus 2^(n-1).  Straight-line with a fixed count,
 * so that gcc -O2 vectorises it (a table lookup per code compiled to byte
 * inserts that stalled on store forwarding). */
#define BLOCK 256
static void offset_codes(const int8_t *q, unsigned n, uint8_t *u)
{
	int k = (int)(8 - n), half = 1 << (k - 1), hi = (1 << (n - 1)) - 1;
	for (int i = 0; i < BLOCK; i++) {
		int c = (q[i] + half - 1 + ((q[i] >> k) & 1)) >> k;
		c = c > hi ? hi : c < -hi - 1 ? -hi - 1 : c;
		u[i] = (uint8_t)(c + hi + 1);
	}
}

/* One row of COLS codes of n bits (per channel) into 32-bit little-endian
 * words: groups of 8 codes (n bytes each), then the rest bit by bit. */
static void pack_row(const int8_t *q, size_t cols, unsigned n, uint8_t *out, size_t row_bytes)
{
	uint8_t *end = out + row_bytes, u[BLOCK];
	int8_t tail[BLOCK];
	for (size_t i = 0; i < cols; i += BLOCK) {
		size_t len = cols - i < BLOCK ? cols - i : BLOCK;
		if (len < BLOCK) {   /* the row's last codes, zero-padded to a block */
			memset(tail, 0, sizeof(tail));
			memcpy(tail, q + i, len);
		}
		offset_codes(len < BLOCK ? tail : q + i, n, u);
		size_t groups = len / 8;
		pack_groups(u, groups, n, out);
		out += groups * n;
		uint64_t acc = 0;   /* under 8 codes left: they go on from a byte boundary */
		for (size_t j = groups * 8; j < len; j++)
			acc |= (uint64_t)u[j] << ((j - groups * 8) * n);
		for (size_t bits = (len - groups * 8) * n, done = 0; done < bits; done += 8)
			*out++ = (uint8_t)(acc >> done);
	}
	memset(out, 0, (size_t)(end - out));   /* zero bits to the row's last 32-bit word */
}

/* The scales of ROWS rows (row scale bits RS) into OUT. */
static void scale_rows(const qs_fmtinfo *f, const uint32_t *rs, size_t rows, size_t cols, unsigned n,
		       const uint8_t *gm, uint8_t *out)
{
	size_t groups = n == 4 ? cols / QS_INT4_GROUP : 1;
	for (size_t r = 0; r < rows; r++) {
		float s = qs_to_f32(f, rs[r]);
		for (size_t g = 0; g < groups; g++) {
			/* INT4: fl32(fl32(s * m) / 7); per channel: s * 2^(8-n), exact */
			float v = n == 4 ? (s * (float)gm[r * groups + g]) / 7.0f : s * (float)(1u << (8 - n));
			qs_store(f, out + (r * groups + g) * f->esize, qs_fmt_round(f, v));
		}
	}
}

/* What one decode of a lower face does with each run of the chunk's codes. */
typedef struct low_job {
	const qs_stream *s;
	const qs_dec_kernels *k;
	unsigned n;
	uint8_t *gm;            /* INT4: the chunk's group maxima, made here unless KEPT */
	int kept, pack;
	uint8_t *out;           /* PACK: the face */
	uint64_t rb;            /* its bytes per row */
} low_job;

/* A run of whole rows (or the chunk) of codes, elements first.. of the chunk. */
static int low_run(void *ctx, const int8_t *q, size_t first, size_t n)
{
	const low_job *j = ctx;
	if (j->n == 4) {
		uint8_t *gm = j->gm + first / QS_INT4_GROUP;
		if (!j->kept)
			j->k->max4(q, n, gm);
		if (j->pack)   /* whole groups: the rows are one run of them */
			j->k->pack4(q, n, gm, j->out + first / 2);
		return 0;
	}
	size_t cols = j->s->cols;
	for (size_t i = 0; j->pack && i < n / cols; i++)
		pack_row(q + i * cols, cols, j->n, j->out + (first / cols + i) * j->rb, j->rb);
	return 0;
}

/* The chunk's codes through low_run.  A scale face has no span (map.c):
 * when it needs the codes it reads their bytes itself. */
static int chunk_codes(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, low_job *j,
		       const char *file, qs_error *err)
{
	qs_container *c = qs_reader_container(r);
	uint8_t *own = NULL;
	if (!j->pack) {
		qs_piece pq = *p;
		qs_span_of(c, s, QS_FACE_Q, p->chunk, &pq);
		if (!(span = own = malloc(pq.span_len + 1)))
			return qs_fail(err, ENOMEM, "%s: out of memory for a %zu-byte span", c->path, pq.span_len);
		if (qs_read_span(c, &pq, own, file, err)) {
			free(own);
			return -1;
		}
	}
	int rc = qs_reader_each_codes(r, p, span, low_run, j, file, err);
	free(own);
	return rc;
}

ssize_t qs_decode_low(qs_reader *r, const qs_stream *s, const qs_piece *p, const uint8_t *span, uint8_t *out,
		      const char *file, qs_error *err)
{
	qs_container *c = qs_reader_container(r);
	unsigned n = qs_face_bits((int)p->face);
	int damaged = 0;
	size_t ne = qs_chunk_elems(s, p->chunk), rows = ne / s->cols, ng = n == 4 ? ne / QS_INT4_GROUP : 0;
	const uint8_t *gm = n == 4 ? kept_max(c, s, p->chunk, ng, &damaged) : NULL;
	if (damaged)
		return qs_piece_error(c, p, file, EIO, "checksum mismatch in kept INT4 group maxima", err);
	low_job j = { .s = s, .k = qs_reader_kernels(r), .n = n, .gm = (uint8_t *)gm, .kept = gm != NULL,
		      .pack = !qs_face_is_scale((int)p->face), .out = out,
		      .rb = qs_face_unit_bytes(s, (int)p->face) };
	if (j.pack || (n == 4 && !gm)) {
		if ((!j.kept && n == 4 && !(j.gm = qs_reader_lowbuf(r, ng, err))) || chunk_codes(r, s, p, span, &j, file, err))
			return -1;
		if (!j.kept && n == 4)
			keep_max(c, s, p->chunk, j.gm, ng);
		if (j.pack)
			return (ssize_t)(rows * j.rb);
	}
	const uint32_t *rs = qs_reader_row_scales(r, s, p->chunk * s->chunk_elems, ne, file, err);
	if (!rs)
		return -1;
	scale_rows(qs_fmt_info(s->fmt), rs, rows, s->cols, n, j.gm, out);
	return (ssize_t)(rows * j.rb);
}

int qs_piece_after(const qs_container *c, const qs_piece *p, uint64_t *key)
{
	const qs_index *ix = c->ix;
	if (p->stream >= ix->n_streams || p->face != QS_FACE_SCALE(4))
		return 0;
	const qs_stream *s = &ix->streams[p->stream];
	if (p->chunk >= s->n_chunks || kept(c, s, p->chunk))
		return 0;   /* the maxima are here already */
	*key = qs_chunk_key(ix, s, QS_FACE_PACK(4), p->chunk);
	return 1;
}
