/* log.h - leveled log lines to stderr (the journal under systemd). */
#ifndef QFS_LOG_H
#define QFS_LOG_H

enum { QFS_ERR = 0, QFS_WARN = 1, QFS_INFO = 2, QFS_DEBUG = 3 };
extern int qfs_log_level;
void qfs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int qfs_log_parse_level(const char *s);   /* -1 if unknown */

#endif
