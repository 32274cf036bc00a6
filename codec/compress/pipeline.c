/* pipeline.c - the ring of encode jobs; see pipeline.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>
#include <zstd.h>

#include "encode.h"
#include "pipeline.h"

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
	int int8_codes;          /* enum qs_int8_codes */
	qs_enc_kernels k;        /* the decoders' set, so both compute codes alike */
} packer;

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

/* Under --int8-codes auto a QUANT chunk keeps the floats alone (QDRV) unless
 * codes + residual are more than 1% smaller: the high view then decodes in
 * one rANS step per weight instead of two (1.4-2.9x faster measured on
 * MiniLM and the generated model), for at most 1% of that chunk's size;
 * ternary and sparse rows, where codes + residual are 2x smaller or more,
 * keep them. */
#define QS_DERIVED_SLACK 1.01

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
	} else {
		const qs_srcfile *sf = &pk->plan->files[src->file];
		qs_error err = { 0 };
		int fd = qs_plan_open(pk->plan, sf, &err);
		e = fd < 0 ? 0 : qs_pread_full(fd, j->in, j->in_len, src->off + boff);
		qs_plan_done(sf, fd);
		if (fd < 0 || e) {
			if (fd < 0)
				snprintf(j->err, sizeof(j->err), "%.500s", err.msg);
			else
				snprintf(j->err, sizeof(j->err), "%s: read error: %s", sf->abs, strerror(-e));
			return JOB_FAILED;
		}
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
		const uint32_t *sc = src->scales + j->e0 / s->cols;
		qs_quant_est est;
		qs_enc_quantise(es, f, j->in, j->ne, j->e0, s->cols, sc, j->q, &est);
		if (pk->int8_codes == QS_CODES_DERIVED
		    || (pk->int8_codes == QS_CODES_AUTO && est.derived <= QS_DERIVED_SLACK * est.stored)) {
			j->lb = qs_enc_fsym(es, f, j->in, j->ne, j->pb);
			j->pa[0] = QS_CODEC_QDRV;
			j->la = 1;
		} else {
			j->lb = qs_enc_qres(es, f, j->in, j->ne, j->e0, s->cols, sc, j->q, est.shift, j->pb);
			j->la = qs_enc_qcode(es, j->q, j->ne, j->pa);
		}
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
	if (es) {
		es->quantise = pk->k.quantise;
		es->fsym_loop = pk->k.fsym_loop;
	}
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

/* Run the ring: returns 0 when every chunk is written. */
static int run_ring(packer *pk, writer *w, const qs_pack_options *opt, qs_error *err)
{
	qs_plan *p = pk->plan;
	uint64_t si = 0, k = 0;
	qs_ticker tk = { &opt->progress, 0, p->source_bytes, qs_now() };
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
			j->ne = qs_chunk_elems(s, k);
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
		qs_encoded x = { j->stream, j->k, j->ne, j->in, j->pa, j->pb, j->in_len, j->la, j->lb, j->hash_a, j->hash_b };
		if ((rc = qs_writer_chunk(w, p, &x, err)))
			break;
		pthread_mutex_lock(&pk->mu);
		j->state = JOB_FREE;
		pk->consumed++;
		pthread_mutex_unlock(&pk->mu);
		if (opt->cancel && *opt->cancel) {
			rc = qs_fail(err, EINTR, "interrupted");
			break;
		}
		qs_tick(&tk, w->done_bytes - tk.done);
	}
	if (!rc)
		qs_tick_end(&tk);
	qs_writer_flush(w, p);
	return rc;
}

/* The ring's buffers: a few MiB per job. */
static int ring_alloc(packer *pk, size_t chunk_bytes, qs_error *err)
{
	pk->ring = calloc(pk->nring, sizeof(job));
	pk->recip = qs_recip_table_new();
	if (!pk->ring || !pk->recip)
		return qs_fail(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < pk->nring; i++) {
		job *j = &pk->ring[i];
		j->in = malloc(chunk_bytes);
		j->pa = malloc(chunk_bytes + QS_PART_SLACK + 1);
		j->pb = malloc(chunk_bytes + QS_PART_SLACK + 1);
		j->q = malloc(chunk_bytes);
		if (!j->in || !j->pa || !j->pb || !j->q)
			return qs_fail(err, ENOMEM, "out of memory");
	}
	return 0;
}

static void ring_free(packer *pk)
{
	for (size_t i = 0; pk->ring && i < pk->nring; i++) {
		job *j = &pk->ring[i];
		free(j->in); free(j->pa); free(j->pb); free(j->q);
	}
	free(pk->ring);
	free(pk->recip);
}

int qs_encode_all(qs_plan *p, writer *w, const qs_pack_options *opt, int threads, const qs_enc_kernels *k,
		  qs_error *err)
{
	packer pk = { .plan = p, .max_bytes = p->chunk_bytes, .nring = 2 * (size_t)threads + 2,
		      .int8_codes = opt ? opt->int8_codes : QS_CODES_AUTO, .k = *k };
	pthread_t *tid = calloc((size_t)threads, sizeof(pthread_t));
	int nt = 0, rc = tid ? ring_alloc(&pk, p->chunk_bytes, err) : qs_fail(err, ENOMEM, "out of memory");
	if (!rc) {
		pthread_mutex_init(&pk.mu, NULL);
		pthread_cond_init(&pk.cv_work, NULL);
		pthread_cond_init(&pk.cv_done, NULL);
		for (; nt < threads; nt++)
			if (pthread_create(&tid[nt], NULL, worker, &pk))
				break;
		rc = nt ? run_ring(&pk, w, opt, err) : qs_fail(err, EAGAIN, "cannot start threads");
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
	ring_free(&pk);
	free(tid);
	return rc;
}
