/*
 * pack.c - the packing pipeline.
 *
 * The main thread walks the chunks in container order and keeps a ring of
 * jobs in flight; worker threads encode them in any order; the main thread
 * writes each finished job in order.  Order of writing is fixed, so the
 * container is byte-identical whatever the number of threads, and the ring
 * bounds memory (a few MiB per job) whatever the model size.  The main thread
 * also feeds the source bytes, in file order, to the SHA-256 of each high
 * view file and histograms 16-bit tensors for the entropy floor.  The INT8
 * view's hashes are taken at the end by reading the new container back.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../common/codecs.h"
#include "../common/container.h"
#include "../common/format.h"
#include "../common/sha256.h"
#include "plan.h"

enum { JOB_FREE, JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED };

typedef struct job {
	int state;
	uint64_t stream, k, e0;
	size_t ne;
	uint8_t *in, *pa, *pb;
	int8_t *q;
	size_t in_len, la, lb;
	uint64_t hash_a, hash_b;
	char err[512];
} job;

typedef struct packer {
	qs_plan *plan;
	size_t max_bytes;        /* largest chunk of any stream */
	job *ring;
	size_t nring;
	uint64_t next_run;       /* sequence number of the next job a worker takes */
	uint64_t produced, consumed;
	int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	rans_recip *recip;
} packer;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- one job, on a worker ------------------------------------------------ */

static size_t enc_zstd(ZSTD_CCtx *z, const uint8_t *in, size_t n, int level, uint8_t *out)
{
	size_t c = ZSTD_compressCCtx(z, out + 1, ZSTD_compressBound(n), in, n, level);
	if (!ZSTD_isError(c) && c < n) {
		out[0] = QS_CODEC_ZSTD;
		return 1 + c;
	}
	out[0] = QS_CODEC_RAW;
	memcpy(out + 1, in, n);
	return 1 + n;
}

/* Encode one chunk; returns JOB_DONE or JOB_FAILED (with j->err).  The
 * caller publishes the state under the ring's mutex, after every field. */
static int run_job(packer *pk, job *j, qs_enc_scratch *es, ZSTD_CCtx *z)
{
	const qs_stream *s = &pk->plan->ix.streams[j->stream];
	const qs_stream_src *src = &pk->plan->src[j->stream];
	const qs_fmtinfo *f = qs_fmt_info(s->fmt);
	uint64_t boff = j->e0 * s->esize;
	int e;
	j->in_len = j->ne * s->esize;
	if (src->kind == SRC_MEM) {
		memcpy(j->in, src->mem + boff, j->in_len);
	} else if ((e = qs_pread_full(pk->plan->files[src->file].fd, j->in, j->in_len, src->off + boff))) {
		snprintf(j->err, sizeof(j->err), "%s: read error: %s", pk->plan->files[src->file].abs, strerror(-e));
		return JOB_FAILED;
	}
	j->lb = 0;
	j->hash_b = 0;
	switch (s->kind) {
	case QS_STREAM_BLOB:
		j->la = enc_zstd(z, j->in, j->in_len, src->zlevel, j->pa);
		j->hash_a = XXH3_64bits(j->in, j->in_len);
		break;
	case QS_STREAM_FLOAT:
		j->la = qs_enc_fsym(es, f, j->in, j->ne, j->pa);
		j->hash_a = XXH3_64bits(j->in, j->in_len);
		break;
	case QS_STREAM_QUANT: {
		uint64_t row0 = j->e0 / s->cols;
		j->lb = qs_enc_qres(es, f, j->in, j->ne, j->e0, s->cols, src->scales + row0, j->q, j->pb);
		j->la = qs_enc_qcode(es, j->q, j->ne, j->pa);
		j->hash_a = XXH3_64bits(j->q, j->ne);
		j->hash_b = XXH3_64bits(j->in, j->in_len);
		break;
	}
	}
	if (!j->la || (s->kind == QS_STREAM_QUANT && !j->lb)) {
		snprintf(j->err, sizeof(j->err), "internal error encoding chunk %llu of '%s'",
			 (unsigned long long)j->k, s->name);
		return JOB_FAILED;
	}
	return JOB_DONE;
}

static void *worker(void *arg)
{
	packer *pk = arg;
	qs_enc_scratch *es = qs_enc_scratch_new(pk->max_bytes, pk->recip);
	ZSTD_CCtx *z = ZSTD_createCCtx();
	pthread_mutex_lock(&pk->mu);
	for (;;) {
		while (!pk->stop && pk->next_run == pk->produced)
			pthread_cond_wait(&pk->cv_work, &pk->mu);
		if (pk->stop)
			break;
		job *j = &pk->ring[pk->next_run++ % pk->nring];
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&pk->mu);
		int state = JOB_FAILED;
		if (es && z)
			state = run_job(pk, j, es, z);
		else
			snprintf(j->err, sizeof(j->err), "out of memory");
		pthread_mutex_lock(&pk->mu);
		j->state = state;
		pthread_cond_broadcast(&pk->cv_done);
	}
	pthread_mutex_unlock(&pk->mu);
	qs_enc_scratch_free(es);
	ZSTD_freeCCtx(z);
	return NULL;
}

/* ---- writing ------------------------------------------------------------- */

typedef struct writer {
	int fd;
	uint64_t off;
	qs_sha256 *sha;
	int64_t sha_file;        /* high view file being hashed, or -1 */
	/* 16-bit histogram of the tensor in progress, and the bins it touched:
	 * finishing a tensor costs O(its size), not O(65536), so 100,000 small
	 * tensors stay cheap */
	uint64_t *hist;
	uint16_t *touched;
	uint32_t n_touched;
	int64_t hist_tensor;
	uint64_t done_bytes;
} writer;

static void finish_hash(writer *w, qs_plan *p)
{
	if (w->sha_file >= 0)
		qs_sha256_final(w->sha, p->ix.files[QS_VIEW_HIGH][w->sha_file].sha256);
	w->sha_file = -1;
}

static void finish_floor(writer *w, qs_plan *p)
{
	if (w->hist_tensor < 0)
		return;
	qs_tensor *t = &p->ix.tensors[w->hist_tensor];
	uint64_t n = t->nbytes / 2;
	double bits = 0;
	for (uint32_t i = 0; i < w->n_touched; i++) {
		uint64_t c = w->hist[w->touched[i]];
		bits += (double)c * log2((double)n / (double)c);
		w->hist[w->touched[i]] = 0;
	}
	t->floor_bytes = bits / 8;
	w->n_touched = 0;
	w->hist_tensor = -1;
}

static int consume(writer *w, qs_plan *p, job *j, qs_error *err)
{
	const qs_stream_src *src = &p->src[j->stream];
	qs_chunk *c = &p->ix.chunks[p->ix.streams[j->stream].first_chunk + j->k];
	*c = (qs_chunk){ w->off, (uint32_t)j->la, (uint32_t)j->lb, j->hash_a, j->hash_b };
	int e = qs_write_full(w->fd, j->pa, j->la);
	if (e || (e = qs_write_full(w->fd, j->pb, j->lb)))
		return qs_fail(err, -e, "write error: %s", strerror(-e));
	w->off += j->la + j->lb;
	/* files are laid out one after another; scale streams (no file) do not
	 * interrupt the file they sit in */
	if (src->hash_file >= 0 && src->hash_file != w->sha_file) {
		finish_hash(w, p);
		w->sha_file = src->hash_file;
	}
	if (src->hash_file >= 0)
		qs_sha256_update(w->sha, j->in, j->in_len);
	if (src->tensor != w->hist_tensor)
		finish_floor(w, p);
	const qs_stream *st = &p->ix.streams[j->stream];
	if (src->tensor >= 0 && st->fmt && st->esize == 2) {
		w->hist_tensor = src->tensor;
		for (size_t i = 0; i < j->ne; i++) {
			uint16_t v = rd16(j->in + 2 * i);
			if (!w->hist[v]++)
				w->touched[w->n_touched++] = v;
		}
	}
	if (src->tensor >= 0)
		p->ix.tensors[src->tensor].stored_bytes += j->la + j->lb;
	if (src->kind == SRC_FILE)
		w->done_bytes += j->in_len;
	return 0;
}

static void progress(const writer *w, const qs_plan *p, double t0, int final)
{
	double el = now() - t0, rate = el > 0 ? (double)w->done_bytes / el : 0;
	double eta = rate > 0 ? (double)(p->source_bytes - w->done_bytes) / rate : 0;
	fprintf(stderr, "\r  %8.1f / %.1f MB  %7.1f MB/s  ETA %5.0f s%s", (double)w->done_bytes / 1e6,
		(double)p->source_bytes / 1e6, rate / 1e6, eta, final ? "\n" : "");
}

/* Run the ring: returns 0 when every chunk is written. */
static int run_pipeline(packer *pk, writer *w, const qs_pack_options *opt, double t0, qs_error *err)
{
	qs_plan *p = pk->plan;
	uint64_t si = 0, k = 0;
	double last = now();
	int rc = 0;
	for (;;) {
		pthread_mutex_lock(&pk->mu);
		/* fill free slots */
		while (pk->produced - pk->consumed < pk->nring) {
			while (si < p->ix.n_streams && k >= p->ix.streams[si].n_chunks) {
				si++;
				k = 0;
			}
			if (si >= p->ix.n_streams)
				break;
			const qs_stream *s = &p->ix.streams[si];
			job *j = &pk->ring[pk->produced % pk->nring];
			j->stream = si;
			j->k = k;
			j->e0 = k * s->chunk_elems;
			j->ne = (size_t)(s->elems - j->e0 < s->chunk_elems ? s->elems - j->e0 : s->chunk_elems);
			j->state = JOB_QUEUED;
			pk->produced++;
			k++;
			pthread_cond_signal(&pk->cv_work);
		}
		if (pk->consumed == pk->produced) {
			pthread_mutex_unlock(&pk->mu);
			break;
		}
		job *j = &pk->ring[pk->consumed % pk->nring];
		while (j->state != JOB_DONE && j->state != JOB_FAILED)
			pthread_cond_wait(&pk->cv_done, &pk->mu);
		pthread_mutex_unlock(&pk->mu);
		if (j->state == JOB_FAILED) {
			rc = qs_fail(err, EIO, "%s", j->err);
			break;
		}
		if ((rc = consume(w, p, j, err)))
			break;
		pthread_mutex_lock(&pk->mu);
		j->state = JOB_FREE;
		pk->consumed++;
		pthread_mutex_unlock(&pk->mu);
		if (opt->cancel && *opt->cancel) {
			rc = qs_fail(err, EINTR, "interrupted");
			break;
		}
		if (opt->progress && now() - last > 0.25) {
			progress(w, p, t0, 0);
			last = now();
		}
	}
	if (opt->progress && !rc)
		progress(w, p, t0, 1);
	finish_hash(w, p);
	finish_floor(w, p);
	return rc;
}

/* ---- index, trailer, INT8 hashes ----------------------------------------- */

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
	qs_reader *r = c ? qs_reader_new(c) : NULL;
	qs_sha256 *h = qs_sha256_new();
	uint8_t *buf = malloc(4u << 20);
	int rc = r && h && buf ? 0 : qs_fail(err, ENOMEM, "out of memory");
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
		for (uint64_t off = 0; off < f->size && !rc;) {
			ssize_t n = qs_read(r, QS_VIEW_INT8, i, off, buf, 4u << 20, err);
			if (n <= 0)
				rc = -1;
			else {
				qs_sha256_update(h, buf, (size_t)n);
				off += (uint64_t)n;
			}
		}
		qs_sha256_final(h, f->sha256);
	}
	free(buf);
	qs_sha256_free(h);
	qs_reader_free(r);
	qs_close(c);
	return rc;
}

static int write_index(writer *w, qs_index *ix, qs_error *err)
{
	size_t mlen;
	char *man = qs_manifest_dump(ix, &mlen);
	size_t cap = ZSTD_compressBound(mlen);
	uint64_t tabs = ix->n_chunks * QS_CHUNK_REC + ix->n_extents * QS_EXTENT_REC;
	uint8_t *buf = man ? malloc(cap + tabs + QS_TRAILER_SIZE) : NULL;
	if (!buf) {
		free(man);
		return qs_fail(err, ENOMEM, "out of memory for the index");
	}
	size_t zl = ZSTD_compress(buf, cap, man, mlen, 9);
	free(man);
	if (ZSTD_isError(zl)) {
		free(buf);
		return qs_fail(err, EIO, "zstd: %s", ZSTD_getErrorName(zl));
	}
	uint8_t *t = buf + zl;
	for (size_t i = 0; i < ix->n_chunks; i++, t += QS_CHUNK_REC) {
		const qs_chunk *c = &ix->chunks[i];
		wr64(t, c->off); wr32(t + 8, c->len_a); wr32(t + 12, c->len_b);
		wr64(t + 16, c->hash_a); wr64(t + 24, c->hash_b);
	}
	for (size_t i = 0; i < ix->n_extents; i++, t += QS_EXTENT_REC) {
		const qs_extent *e = &ix->extents[i];
		wr64(t, e->file_off); wr64(t + 8, e->len); wr32(t + 16, e->stream); wr32(t + 20, e->face);
		wr64(t + 24, e->stream_off);
	}
	uint64_t moff = w->off, ilen = zl + tabs;
	memset(t, 0, QS_TRAILER_SIZE);
	memcpy(t, QS_TRAILER_MAGIC, 8);
	wr32(t + 8, QS_FORMAT_VERSION);
	wr32(t + 12, QS_TRAILER_SIZE);
	wr64(t + 16, moff + ilen + QS_TRAILER_SIZE);
	wr64(t + 24, moff); wr64(t + 32, zl); wr64(t + 40, mlen);
	wr64(t + 48, moff + zl); wr64(t + 56, ix->n_chunks);
	wr64(t + 64, moff + zl + ix->n_chunks * QS_CHUNK_REC); wr64(t + 72, ix->n_extents);
	wr64(t + 80, XXH3_64bits(buf, ilen));
	wr64(t + 120, XXH3_64bits(t, 120));
	int e = qs_write_full(w->fd, buf, ilen + QS_TRAILER_SIZE);
	int rc = e ? qs_fail(err, -e, "write error: %s", strerror(-e)) : 0;
	w->off += ilen + QS_TRAILER_SIZE;
	ix->container_bytes = w->off;
	free(buf);
	return rc;
}

/* ---- the whole pack -------------------------------------------------------- */

static int start_file(writer *w, const char *out, char **tmp, qs_error *err)
{
	char *d = strdup(out), *b = strdup(out);
	int rc = -1;
	if (d && b && asprintf(tmp, "%s/.%s.tmp.XXXXXX", dirname(d), basename(b)) >= 0) {
		w->fd = mkstemp(*tmp);
		if (w->fd < 0) {
			qs_fail(err, errno, "%s: cannot create the output: %s", out, strerror(errno));
			free(*tmp);
			*tmp = NULL;
		} else {
			uint8_t h[QS_HEADER_SIZE] = { 0 };
			memcpy(h, QS_HEADER_MAGIC, 8);
			wr32(h + 8, QS_FORMAT_VERSION);
			wr32(h + 12, QS_HEADER_SIZE);
			wr64(h + 56, XXH3_64bits(h, 56));
			int e = qs_write_full(w->fd, h, sizeof(h));
			rc = e ? qs_fail(err, -e, "%s: write error: %s", *tmp, strerror(-e)) : 0;
			w->off = QS_HEADER_SIZE;
		}
	} else {
		qs_fail(err, ENOMEM, "out of memory");
	}
	free(d);
	free(b);
	return rc;
}

static int commit_file(writer *w, const char *tmp, const char *out, qs_error *err)
{
	if (fchmod(w->fd, 0644) || fsync(w->fd))
		return qs_fail(err, errno, "%s: %s", tmp, strerror(errno));
	if (rename(tmp, out))
		return qs_fail(err, errno, "%s: cannot rename into place: %s", out, strerror(errno));
	char *d = strdup(out);
	int dfd = d ? open(dirname(d), O_RDONLY | O_DIRECTORY) : -1;
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(d);
	return 0;
}

int qs_pack(const char *src, const char *out, const qs_pack_options *opt_in, qs_pack_stats *stats, qs_error *err)
{
	qs_pack_options opt = { 0 };
	if (opt_in)
		opt = *opt_in;
	size_t chunk_bytes = opt.chunk_bytes ? opt.chunk_bytes : QS_DEFAULT_CHUNK_BYTES;
	if (chunk_bytes < 64 || chunk_bytes > QS_MAX_CHUNK_BYTES)
		return qs_fail(err, EINVAL, "chunk size %zu out of range [64, %u]", chunk_bytes, QS_MAX_CHUNK_BYTES);
	int threads = opt.threads > 0 ? opt.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	if (threads > 256)
		threads = 256;
	double t0 = now();
	qs_plan plan;
	packer pk = { 0 };
	writer w = { .fd = -1, .sha_file = -1, .hist_tensor = -1 };
	char *tmp = NULL;
	pthread_t *tid = NULL;
	int nt = 0, rc = qs_plan_build(&plan, src, chunk_bytes, err);
	if (!rc) {
		pk.plan = &plan;
		pk.max_bytes = chunk_bytes;
		pk.nring = 2 * (size_t)threads + 2;
		pk.ring = calloc(pk.nring, sizeof(job));
		pk.recip = qs_recip_table_new();
		plan.ix.chunks = calloc(plan.ix.n_chunks + 1, sizeof(qs_chunk));
		w.sha = qs_sha256_new();
		w.hist = calloc(65536, sizeof(uint64_t));
		w.touched = malloc(65536 * sizeof(uint16_t));
		tid = calloc((size_t)threads, sizeof(pthread_t));
		rc = pk.ring && pk.recip && plan.ix.chunks && w.sha && w.hist && w.touched && tid ? 0 : qs_fail(err, ENOMEM, "out of memory");
		for (size_t i = 0; i < pk.nring && !rc; i++) {
			job *j = &pk.ring[i];
			j->in = malloc(chunk_bytes);
			j->pa = malloc(chunk_bytes + QS_PART_SLACK + 1);
			j->pb = malloc(chunk_bytes + QS_PART_SLACK + 1);
			j->q = malloc(chunk_bytes);
			if (!j->in || !j->pa || !j->pb || !j->q)
				rc = qs_fail(err, ENOMEM, "out of memory");
		}
	}
	if (!rc)
		rc = start_file(&w, out, &tmp, err);
	if (!rc) {
		pthread_mutex_init(&pk.mu, NULL);
		pthread_cond_init(&pk.cv_work, NULL);
		pthread_cond_init(&pk.cv_done, NULL);
		for (; nt < threads; nt++)
			if (pthread_create(&tid[nt], NULL, worker, &pk))
				break;
		rc = nt ? run_pipeline(&pk, &w, &opt, t0, err) : qs_fail(err, EAGAIN, "cannot start threads");
		pthread_mutex_lock(&pk.mu);
		pk.stop = 1;
		pthread_cond_broadcast(&pk.cv_work);
		pthread_mutex_unlock(&pk.mu);
		for (int i = 0; i < nt; i++)
			pthread_join(tid[i], NULL);
		pthread_mutex_destroy(&pk.mu);
		pthread_cond_destroy(&pk.cv_work);
		pthread_cond_destroy(&pk.cv_done);
	}
	if (!rc) {
		for (size_t i = 0; i < plan.ix.n_tensors; i++)
			plan.ix.floor_bytes += plan.ix.tensors[i].floor_bytes;
		/* scales count toward their tensor's stored bytes */
		for (size_t i = 0; i < plan.ix.n_tensors; i++) {
			qs_tensor *t = &plan.ix.tensors[i];
			if (t->quantized) {
				const qs_stream *sc = &plan.ix.streams[plan.ix.streams[t->stream].scale_stream];
				for (uint64_t k = 0; k < sc->n_chunks; k++)
					t->stored_bytes += plan.ix.chunks[sc->first_chunk + k].len_a;
			}
		}
		rc = qs_index_validate(&plan.ix, QS_HEADER_SIZE, w.off, tmp, err);
	}
	if (!rc)
		rc = hash_int8_view(&plan.ix, w.fd, tmp, err);
	if (!rc)
		rc = write_index(&w, &plan.ix, err);
	if (!rc)
		rc = commit_file(&w, tmp, out, err);
	if (rc && tmp)
		unlink(tmp);
	if (w.fd >= 0)
		close(w.fd);
	if (!rc && stats) {
		stats->source_bytes = plan.source_bytes;
		stats->container_bytes = w.off;
		stats->seconds = now() - t0;
	}
	for (size_t i = 0; pk.ring && i < pk.nring; i++) {
		job *j = &pk.ring[i];
		free(j->in); free(j->pa); free(j->pb); free(j->q);
	}
	free(pk.ring);
	free(pk.recip);
	free(tid);
	free(tmp);
	free(w.hist);
	free(w.touched);
	qs_sha256_free(w.sha);
	qs_plan_free(&plan);
	return rc;
}
