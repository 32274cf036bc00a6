/* stats.c - the /.qstorefs/stats snapshot; see stats.h. */
#include "stats.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *qfs_stats_text(qfs_daemon *d, const qfs_who *who, size_t *len)
{
	qsv_cache_stats c;
	qsv_counters *n = &d->srv->n;
	size_t kept;
	uint64_t reused, allocated;
	qsv_cache_get_stats(d->srv->cache, &c);
	qsv_spans_stats(&d->srv->spans, &kept, &reused, &allocated);
	json_t *j = json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:f}, s:{s:I, s:I}, s:{s:I, s:I, s:I},"
			      " s:I, s:I, s:I, s:I, s:o}",
		"cache", "size", (json_int_t)c.capacity, "used", (json_int_t)c.used, "entries", (json_int_t)c.entries,
		"hits", (json_int_t)c.hits, "misses", (json_int_t)c.misses, "evictions", (json_int_t)c.evictions,
		"waits", (json_int_t)c.waits,
		"decoded", "bytes", (json_int_t)atomic_load(&n->decoded_bytes),
		"seconds", (double)atomic_load(&n->decode_ns) / 1e9,
		"prefetch", "issued", (json_int_t)c.prefetch_issued, "used", (json_int_t)c.prefetch_used,
		"span_buffers", "kept_bytes", (json_int_t)kept, "reused", (json_int_t)reused,
		"allocated", (json_int_t)allocated,
		"errors", (json_int_t)atomic_load(&n->errors), "reads", (json_int_t)atomic_load(&n->reads),
		"read_bytes", (json_int_t)atomic_load(&n->read_bytes),
		"backing_bytes", (json_int_t)atomic_load(&n->backing_bytes), "models", qfs_ns_models_json(d->ns, who));
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	*len = s ? strlen(s) : 0;
	return s;
}
