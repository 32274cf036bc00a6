/*
 * log.h - one line per event, leveled, where someone will read it: on
 * stderr with the "<N>" level prefix journald parses when stderr is the
 * journal (systemd's $JOURNAL_STREAM names it), on stderr with a plain
 * "error: "/"warning: " prefix otherwise (a terminal, a test's log file),
 * and through syslog(3) once the daemon has put itself in the background
 * (mount -t, fstab, plain qstorefs B M: stderr is /dev/null then).
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

enum { QSV_TO_STDERR = 0, QSV_TO_JOURNAL = 1, QSV_TO_SYSLOG = 2 };

typedef struct qsv_log {
	atomic_int level;
	int to;                /* QSV_TO_* */
	FILE *out;             /* stderr unless a test says otherwise */
} qsv_log;

/* Logs to stderr, with "<N>" prefixes if stderr is the journal. */
void qsv_log_init(qsv_log *l, int level);
/* From now on through syslog (the daemon went to the background). */
void qsv_log_to_syslog(qsv_log *l);
void qsv_logf(qsv_log *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "error", "warning", "info", "debug" -> level; -1 if unknown */
int qsv_log_parse_level(const char *s);

#endif
