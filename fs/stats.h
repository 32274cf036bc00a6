/* stats.h - the text of /.qstorefs/stats (JSON): cache, decode, prefetch
 * and error counters, and the models with their open files. */
#ifndef QFS_STATS_H
#define QFS_STATS_H

#include <stddef.h>

#include "daemon.h"

/* A snapshot for WHO (the caller frees it), its length in *len; NULL when
 * out of memory.  Models WHO may not read are left out. */
char *qfs_stats_text(qfs_daemon *d, const qfs_who *who, size_t *len);

#endif
