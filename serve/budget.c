/* budget.c - bytes pinned by reads in flight; see budget.h. */
#include "budget.h"

void qsv_budget_init(qsv_budget *b, uint64_t limit)
{
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->limit = limit;
	b->used = b->peak = 0;
}

void qsv_budget_destroy(qsv_budget *b)
{
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
}

static void add(qsv_budget *b, uint64_t n)
{
	b->used += n;
	if (b->used > b->peak)
		b->peak = b->used;
}

void qsv_budget_take(qsv_budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	while (b->used && b->used + n > b->limit)
		pthread_cond_wait(&b->cv, &b->mu);
	add(b, n);
	pthread_mutex_unlock(&b->mu);
}

int qsv_budget_try(qsv_budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	int ok = !b->used || b->used + n <= b->limit;
	if (ok)
		add(b, n);
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void qsv_budget_give(qsv_budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	b->used -= n;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}
