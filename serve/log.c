/* log.c - leveled, escaped log lines; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <string.h>

#include "qstore.h"

/* Is stderr the journal?  systemd sets JOURNAL_STREAM to its "dev:inode". */
static int stderr_is_journal(void)
{
	const char *j = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return j && sscanf(j, "%llu:%llu", &dev, &ino) == 2 && !fstat(2, &st) && (unsigned long long)st.st_dev == dev
		&& (unsigned long long)st.st_ino == ino;
}

void qsv_log_init(qsv_log *l, int level)
{
	atomic_store(&l->level, level);
	l->out = stderr;
	l->to = stderr_is_journal() ? QSV_TO_JOURNAL : QSV_TO_STDERR;
}

void qsv_log_to_syslog(qsv_log *l)
{
	openlog("qstorefs", LOG_PID, LOG_DAEMON);
	l->to = QSV_TO_SYSLOG;
}

void qsv_logf(qsv_log *l, int level, const char *fmt, ...)
{
	static const char *const kmsg[] = { "<3>error: ", "<4>warning: ", "<6>", "<7>debug: " };
	static const char *const plain[] = { "error: ", "warning: ", "", "debug: " };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	if (level > atomic_load(&l->level))
		return;
	char line[2048], safe[4 * sizeof(line)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	qs_escape(line, safe, sizeof(safe));
	if (l->to == QSV_TO_SYSLOG)
		syslog(prio[level], "%s%s", plain[level], safe);
	else if (l->to == QSV_TO_JOURNAL)
		fprintf(l->out ? l->out : stderr, "%sqstorefs: %s\n", kmsg[level], safe);
	else
		fprintf(l->out ? l->out : stderr, "qstorefs: %s%s\n", plain[level], safe);
}

int qsv_log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}
