/* log.c - one line per event, with a level prefix systemd understands. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int qfs_log_level = QFS_INFO;

void qfs_log(int level, const char *fmt, ...)
{
	static const char *const prefix[] = { "<3>error: ", "<4>warning: ", "<6>", "<7>debug: " };
	if (level > qfs_log_level)
		return;
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%sqstorefs: %s\n", prefix[level], line);
}

int qfs_log_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}
