/* ready.c - readahead and readiness; see ready.h. */
#include "ready.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-daemon.h>

static void *ready(void *arg)
{
	qfs_daemon *d = arg;
	struct stat st;
	if (stat(d->o.mountpoint, &st)) {   /* served by the loop: the mount answers */
		qsv_logf(&d->log, QSV_ERR, "%s: mount does not answer: %s", d->o.mountpoint, strerror(errno));
		return NULL;
	}
	char path[128];
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
	FILE *f = fopen(path, "w");
	int ok = f && fprintf(f, "%u\n", d->o.readahead_kb) > 0;
	if (f && fclose(f))
		ok = 0;
	if (!ok)
		qsv_logf(&d->log, QSV_DEBUG, "%s: cannot raise readahead (not root?)", path);
	qsv_logf(&d->log, QSV_INFO, "mounted %s on %s (cache %llu MiB, prefetch up to %llu MiB, %u workers)",
		 d->o.backing, d->o.mountpoint, (unsigned long long)(d->o.cache_size >> 20),
		 (unsigned long long)(d->o.prefetch_max >> 20), d->o.workers);
	sd_notify(0, "READY=1");
	return NULL;
}

void qfs_ready_start(qfs_daemon *d)
{
	pthread_t t;
	if (!pthread_create(&t, NULL, ready, d))
		pthread_detach(t);
}
