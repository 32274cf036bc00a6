/*
 * log.h - one line per event, leveled, with a prefix systemd understands.
 *
 * The logger is an object (the daemon owns one and hands it to every
 * module); its level is atomic because SIGHUP may change it while any thread
 * logs.  Control characters in a message (a container or tensor name with a
 * newline or ESC in it) are written as \xNN, so no input can forge a line or
 * reach a terminal raw.
 */
#ifndef QSV_LOG_H
#define QSV_LOG_H

#include <stdatomic.h>
#include <stdio.h>

enum { QSV_ERR = 0, QSV_WARN = 1, QSV_INFO = 2, QSV_DEBUG = 3 };

typedef struct qsv_log {
	atomic_int level;
	FILE *out;             /* stderr unless a test says otherwise */
} qsv_log;

void qsv_log_init(qsv_log *l, int level);
void qsv_logf(qsv_log *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "error", "warning", "info", "debug" -> level; -1 if unknown */
int qsv_log_parse_level(const char *s);

#endif
