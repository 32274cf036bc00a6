/*
 * watcher.h - the background thread that keeps the namespace current:
 * inotify on the backing directory (containers added, renamed over,
 * removed) and SIGHUP (rescan + reload the configuration file: what can
 * change live changes, a bad file changes nothing).
 */
#ifndef QFS_WATCHER_H
#define QFS_WATCHER_H

#include <pthread.h>
#include <stdatomic.h>

#include "daemon.h"

typedef struct qfs_watcher {
	qfs_daemon *d;
	int wake_fd;               /* eventfd: stop wakes the thread */
	int sig_fd;                /* signalfd for SIGHUP (blocked in every thread) */
	atomic_int stop;
	pthread_t tid;
	int started;
} qfs_watcher;

/* Blocks SIGHUP in the calling thread (so call it before any thread is
 * created: they inherit the mask) and takes it through a signalfd: no
 * signal handler, no global. */
int qfs_watcher_init(qfs_watcher *w, qfs_daemon *d);
int qfs_watcher_start(qfs_watcher *w);
void qfs_watcher_stop(qfs_watcher *w);

#endif
