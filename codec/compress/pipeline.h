/*
 * pipeline.h - encoding every chunk of a plan on worker threads and handing
 * them to the writer in container order.
 *
 * The main thread walks the chunks in container order and keeps a ring of
 * jobs in flight; worker threads encode them in any order; the main thread
 * writes each finished job in order.  The order of writing is fixed, so the
 * container is byte-identical whatever the number of threads, and the ring
 * bounds memory (a few MiB per job) whatever the model size.
 */
#ifndef QS_PIPELINE_H
#define QS_PIPELINE_H

#include "../common/quantise.h"
#include "encode.h"
#include "writer.h"

/* Encode and write every chunk of P with THREADS workers using kernels K
 * (INT8 codes by K's quantiser), reporting to OPT->progress.  0, or -1 with
 * *err (EINTR when OPT->cancel was raised). */
int qs_encode_all(qs_plan *p, writer *w, const qs_pack_options *opt, int threads, const qs_enc_kernels *k,
		  qs_error *err);

#endif
