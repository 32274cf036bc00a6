/*
 * pack.c - qs_pack, the one place that uses both halves of the library:
 * plan the container (compress/plan), encode and write every chunk
 * (compress/pipeline, compress/writer), then read the new chunks back
 * through the decoder (decompress/) to hash the INT8 view's files, write the
 * index and rename the file into place.  Reading back is what makes the
 * recorded INT8 hashes a statement about what a reader will really decode;
 * for the same reason the packer computes INT8 codes with the decoder's own
 * quantiser kernel (the set QSTORE_SIMD or cpuid chose), and encodes FSYM
 * parts with that set's loop (the same bytes whichever it is).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/format.h"
#include "compress/pipeline.h"
#include "decompress/container.h"

static int same_extents(const qs_index *ix, const qs_vfile *a, const qs_vfile *b)
{
	if (a->size != b->size || a->n_extents != b->n_extents)
		return 0;
	for (uint64_t i = 0; i < a->n_extents; i++) {
		const qs_extent *x = &ix->extents[a->first_extent + i], *y = &ix->extents[b->first_extent + i];
		if (x->stream != y->stream || x->face != y->face || x->len != y->len || x->stream_off != y->stream_off)
			return 0;
	}
	return 1;
}

static int hash_int8_view(qs_index *ix, int fd, const char *path, qs_error *err)
{
	qs_container *c = qs_container_wrap(ix, fd, path, err);
	qs_reader *r = c ? qs_reader_new(c, err) : NULL;
	qs_sha256 *h = qs_sha256_new();
	uint8_t *buf = malloc(QS_IO_BLOCK);
	int rc = !r ? -1 : h && buf ? 0 : qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < ix->n_files[QS_VIEW_INT8] && !rc; i++) {
		qs_vfile *f = &ix->files[QS_VIEW_INT8][i];
		const qs_vfile *same = NULL;
		for (size_t k = 0; k < ix->n_files[QS_VIEW_HIGH] && !same; k++)
			if (!strcmp(ix->files[QS_VIEW_HIGH][k].path, f->path)
			    && same_extents(ix, f, &ix->files[QS_VIEW_HIGH][k]))
				same = &ix->files[QS_VIEW_HIGH][k];
		if (same) {
			memcpy(f->sha256, same->sha256, 32);
			continue;
		}
		if (qs_stream_file(c, r, QS_VIEW_INT8, i, buf, h, NULL, NULL, NULL, f->sha256, err) < 0)
			rc = -1;
	}
	free(buf);
	qs_sha256_free(h);
	qs_reader_free(r);
	qs_close(c);
	return rc;
}

/* Totals the writer could not know chunk by chunk: the floor, and each
 * quantised tensor's scales in its stored bytes. */
static void finish_stats(qs_index *ix)
{
	for (size_t i = 0; i < ix->n_tensors; i++) {
		qs_tensor *t = &ix->tensors[i];
		ix->floor_bytes += t->floor_bytes;
		if (!t->quantized)
			continue;
		const qs_stream *sc = &ix->streams[ix->streams[t->stream].scale_stream];
		for (uint64_t k = 0; k < sc->n_chunks; k++)
			t->stored_bytes += ix->chunks[sc->first_chunk + k].len_a;
	}
}

static int writer_alloc(writer *w, qs_error *err)
{
	w->sha = qs_sha256_new();
	w->hist = calloc(65536, sizeof(uint64_t));
	w->touched = malloc(65536 * sizeof(uint16_t));
	return w->sha && w->hist && w->touched ? 0 : qs_fail(err, ENOMEM, "out of memory");
}

static void writer_free(writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->hist);
	free(w->touched);
	qs_sha256_free(w->sha);
}

int qs_pack(const char *src, const char *out, const qs_pack_options *opt_in, qs_pack_stats *stats, qs_error *err)
{
	qs_pack_options opt = { 0 };
	if (opt_in)
		opt = *opt_in;
	size_t chunk_bytes = opt.chunk_bytes ? opt.chunk_bytes : QS_DEFAULT_CHUNK_BYTES;
	if (chunk_bytes < 64 || chunk_bytes > QS_MAX_CHUNK_BYTES)
		return qs_fail(err, EINVAL, "chunk size %zu out of range [64, %u]", chunk_bytes, QS_MAX_CHUNK_BYTES);
	if (opt.int8_codes < QS_CODES_AUTO || opt.int8_codes > QS_CODES_DERIVED)
		return qs_fail(err, EINVAL, "int8_codes %d is not one of enum qs_int8_codes", opt.int8_codes);
	struct stat st;
	if (!opt.force && !lstat(out, &st))
		return qs_fail(err, EEXIST, "%s: already exists (replacing it needs --force)", out);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = opt.threads > 0 ? opt.threads : cpus > 0 ? (int)cpus : 1;
	threads = threads > 256 ? 256 : threads;
	double t0 = qs_now();
	qs_plan plan;
	writer w = { .fd = -1, .sha_file = -1, .hist_tensor = -1 };
	char *tmp = NULL;
	int unchanged = 0, rc = qs_plan_build(&plan, src, chunk_bytes, err);
	if (!rc && !(plan.ix.chunks = calloc(plan.ix.n_chunks + 1, sizeof(qs_chunk))))
		rc = qs_fail(err, ENOMEM, "out of memory");
	if (!rc)
		rc = writer_alloc(&w, err);
	if (!rc)
		rc = qs_writer_start(&w, out, &tmp, err);
	const qs_dec_kernels *dk = qs_dec_select();
	qs_enc_kernels ek = { dk->derive, qs_enc_fsym_loop_for(dk->name) };
	if (!rc)
		rc = qs_encode_all(&plan, &w, &opt, threads, &ek, err);
	if (!rc) {
		finish_stats(&plan.ix);
		rc = qs_index_validate(&plan.ix, QS_HEADER_SIZE, w.off, tmp, err);
	}
	if (!rc)
		rc = hash_int8_view(&plan.ix, w.fd, tmp, err);
	if (!rc)
		rc = qs_writer_index(&w, &plan.ix, err);
	if (!rc)   /* a source that grew or was rewritten meanwhile is not what we stored */
		rc = qs_plan_unchanged(&plan, err);
	if (!rc)
		rc = qs_writer_commit(&w, tmp, out, &unchanged, err);
	if (rc && tmp)
		unlink(tmp);
	if (!rc && stats) {
		stats->source_bytes = plan.source_bytes;
		stats->container_bytes = w.off;
		stats->seconds = qs_now() - t0;
		stats->unchanged = unchanged;
	}
	writer_free(&w);
	free(tmp);
	qs_plan_free(&plan);   /* qs_plan_build leaves it freeable even when it fails */
	return rc;
}
