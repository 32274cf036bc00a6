/* spans.c - the server's pool of span buffers; see spans.h. */
#include "spans.h"

#include <stdlib.h>

int qsv_spans_init(qsv_spans *s)
{
	s->bytes = s->n = 0;
	s->reused = s->allocated = 0;
	return pthread_mutex_init(&s->mu, NULL) ? -1 : 0;
}

void qsv_spans_destroy(qsv_spans *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->kept[i].p);
	s->n = s->bytes = 0;
	pthread_mutex_destroy(&s->mu);
}

/* The smallest kept buffer of at least LEN bytes, else the largest (to be
 * grown): spans mostly share a few sizes, so the best fit is usually exact. */
static size_t pick(const qsv_spans *s, size_t len)
{
	size_t best = s->n, big = s->n;
	for (size_t i = 0; i < s->n; i++) {
		size_t c = s->kept[i].cap;
		if (c >= len && (best == s->n || c < s->kept[best].cap))
			best = i;
		if (big == s->n || c > s->kept[big].cap)
			big = i;
	}
	return best < s->n ? best : big;
}

uint8_t *qsv_span_take(qsv_spans *s, size_t len, size_t *cap)
{
	uint8_t *p = NULL;
	size_t have = 0;
	if (len < QSV_SPAN_KEEP_MIN) {   /* a scale piece's empty span, a small chunk's */
		p = malloc(len ? len : 1);
		*cap = p ? (len ? len : 1) : 0;
		return p;
	}
	pthread_mutex_lock(&s->mu);
	size_t i = pick(s, len);
	if (i < s->n) {
		p = s->kept[i].p;
		have = s->kept[i].cap;
		s->bytes -= have;
		s->kept[i] = s->kept[--s->n];
	}
	if (have >= len)
		s->reused++;
	else
		s->allocated++;
	pthread_mutex_unlock(&s->mu);
	if (have < len) {   /* free + malloc: realloc would copy bytes nobody needs */
		free(p);
		have = len ? len : 1;
		p = malloc(have);
	}
	*cap = p ? have : 0;
	return p;
}

void qsv_span_give(qsv_spans *s, uint8_t *p, size_t cap)
{
	if (!p)
		return;
	pthread_mutex_lock(&s->mu);
	int keep = s->n < QSV_SPAN_SLOTS && cap >= QSV_SPAN_KEEP_MIN && cap <= QSV_SPAN_KEEP_MAX
		&& s->bytes + cap <= QSV_SPAN_POOL;
	if (keep) {
		s->kept[s->n].p = p;
		s->kept[s->n++].cap = cap;
		s->bytes += cap;
	}
	pthread_mutex_unlock(&s->mu);
	if (!keep)
		free(p);
}

void qsv_spans_stats(qsv_spans *s, size_t *kept_bytes, uint64_t *reused, uint64_t *allocated)
{
	pthread_mutex_lock(&s->mu);
	*kept_bytes = s->bytes;
	*reused = s->reused;
	*allocated = s->allocated;
	pthread_mutex_unlock(&s->mu);
}
