/*
 * budget.h - a bound on the bytes that reads in flight pin beyond the cache.
 *
 * The cache never evicts an entry a read holds, so with N concurrent reads
 * of large chunks it overshoots its capacity by N chunks (32 readers of 16
 * MiB chunks took a 16 MiB cache to 269 MiB).  Every read, and every
 * prefetch, first takes what it may pin (decoded chunks plus the spans read
 * to make them) from one budget and gives it back when its reply is sent;
 * a read that does not fit waits, unless nothing is in flight (so one read
 * larger than the budget still proceeds, alone).  Memory then stays within
 * cache_size + the budget + fixed per-thread overhead (README).
 */
#ifndef QSV_BUDGET_H
#define QSV_BUDGET_H

#include <pthread.h>
#include <stdint.h>

#define QSV_PIN_BUDGET (48ull << 20)

typedef struct qsv_budget {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t limit, used, peak;
} qsv_budget;

void qsv_budget_init(qsv_budget *b, uint64_t limit);
void qsv_budget_destroy(qsv_budget *b);
/* Take N bytes, waiting while others hold the budget and N does not fit. */
void qsv_budget_take(qsv_budget *b, uint64_t n);
/* Try to take N bytes without waiting: 1 if taken (prefetch skips if not). */
int qsv_budget_try(qsv_budget *b, uint64_t n);
void qsv_budget_give(qsv_budget *b, uint64_t n);

#endif
