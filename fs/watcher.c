/* watcher.c - inotify + SIGHUP; see watcher.h. */
#include "watcher.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"

int qfs_watcher_init(qfs_watcher *w, qfs_daemon *d)
{
	sigset_t hup;
	memset(w, 0, sizeof(*w));
	w->d = d;
	sigemptyset(&hup);
	sigaddset(&hup, SIGHUP);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->sig_fd = pthread_sigmask(SIG_BLOCK, &hup, NULL) ? -1 : signalfd(-1, &hup, SFD_CLOEXEC | SFD_NONBLOCK);
	return w->wake_fd < 0 || w->sig_fd < 0 ? -1 : 0;
}

/* SIGHUP: the file again; the log level and the prefetch window change now
 * (both atomics), the rest at the next start. */
static void reload_conf(qfs_daemon *d)
{
	if (!d->o.conf_path)
		return;
	qfs_conf fc = { 0 };
	char err[1024];
	if (qfs_conf_load(d->o.conf_path, &fc, err, sizeof(err))) {
		qsv_logf(&d->log, QSV_ERR, "SIGHUP: %s: configuration not reloaded: %s", d->o.conf_path, err);
	} else {
		if (fc.has_log_level)
			atomic_store(&d->log.level, fc.log_level);
		if (fc.has_prefetch_max)
			atomic_store(&d->srv->prefetch_max, fc.prefetch_max);
		qsv_logf(&d->log, QSV_INFO, "SIGHUP: %s reloaded (log_level, prefetch_max apply now; others at restart)",
			 d->o.conf_path);
	}
	qfs_conf_free(&fc);
}

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB \
		    | IN_DELETE_SELF | IN_MOVE_SELF)

/* Read every pending event; *wd becomes -1 when the directory's watch went
 * away with the directory (IN_IGNORED). */
static void drain(int in, int *wd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while (in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		for (char *p = buf; p + sizeof(struct inotify_event) <= buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			if (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				*wd = -1;
			p += sizeof(*e) + e->len;
		}
}

static void *run(void *arg)
{
	qfs_watcher *w = arg;
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	int wd = in < 0 ? -1 : inotify_add_watch(in, w->d->o.backing, WATCH_MASK);
	if (wd < 0)
		qsv_logf(&w->d->log, QSV_WARN, "%s: cannot watch for changes (%s): new containers appear on the next listing",
			 w->d->o.backing, strerror(errno));
	while (!atomic_load(&w->stop)) {
		struct pollfd p[3] = { { w->wake_fd, POLLIN, 0 }, { w->sig_fd, POLLIN, 0 }, { in, POLLIN, 0 } };
		if (poll(p, in >= 0 ? 3 : 2, 1000) <= 0) {
			/* a backing directory removed (or replaced) and created again:
			 * watch the new one, and show what it holds */
			if (in >= 0 && wd < 0 && (wd = inotify_add_watch(in, w->d->o.backing, WATCH_MASK)) >= 0)
				qfs_rescan(w->d);
			continue;
		}
		struct signalfd_siginfo si;
		if (p[1].revents && read(w->sig_fd, &si, sizeof(si)) == sizeof(si) && !atomic_load(&w->stop)) {
			qsv_logf(&w->d->log, QSV_INFO, "SIGHUP: rescanning %s", w->d->o.backing);
			reload_conf(w->d);
		}
		drain(in, &wd);
		if (atomic_load(&w->stop))
			break;
		usleep(20000);   /* let a burst of renames settle */
		drain(in, &wd);
		qfs_rescan(w->d);
	}
	if (in >= 0)
		close(in);
	return NULL;
}

int qfs_watcher_start(qfs_watcher *w)
{
	w->started = !pthread_create(&w->tid, NULL, run, w);
	return w->started ? 0 : -1;
}

void qfs_watcher_stop(qfs_watcher *w)
{
	uint64_t one = 1;
	atomic_store(&w->stop, 1);
	if (w->wake_fd >= 0 && write(w->wake_fd, &one, sizeof(one)) < 0) {}
	if (w->started)
		pthread_join(w->tid, NULL);
	w->started = 0;
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->sig_fd >= 0)
		close(w->sig_fd);
	w->wake_fd = w->sig_fd = -1;
}
