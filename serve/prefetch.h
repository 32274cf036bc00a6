/*
 * prefetch.h - worker threads that load chunks ahead of sequential readers.
 * A bounded queue of (version, file, piece) jobs; a full queue drops new jobs
 * (prefetch is advice), and each job holds a reference to its version.
 */
#ifndef QSV_PREFETCH_H
#define QSV_PREFETCH_H

#include "version.h"

qsv_prefetcher *qsv_prefetch_start(qsv_server *s, unsigned workers);
/* Stop the workers, drop queued jobs. */
void qsv_prefetch_stop(qsv_prefetcher *pf);
/* Queue the chunk of P (file FILE of VIEW of V); false if it was dropped. */
int qsv_prefetch_enqueue(qsv_prefetcher *pf, qsv_version *v, int view, size_t file, const qs_piece *p);

#endif
