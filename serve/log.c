/* log.c - leveled, escaped log lines; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <string.h>

#include "qstore.h"

void qsv_log_init(qsv_log *l, int level)
{
	atomic_store(&l->level, level);
	l->out = stderr;
}

void qsv_logf(qsv_log *l, int level, const char *fmt, ...)
{
	static const char *const prefix[] = { "<3>error: ", "<4>warning: ", "<6>", "<7>debug: " };
	if (level > atomic_load(&l->level))
		return;
	char line[2048], safe[4 * sizeof(line)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	qs_escape(line, safe, sizeof(safe));
	fprintf(l->out ? l->out : stderr, "%sqstorefs: %s\n", prefix[level], safe);
}

int qsv_log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}
