/*
 * qstorefs - mount a directory of qstore containers.
 *
 *   qstorefs BACKING_DIR MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [--help] [--version]
 *
 * For each NAME.qst: NAME/model-<dtype>.safetensors and
 * NAME/model-int8.safetensors (single-file views), NAME/<dtype>/ (the source
 * files) and NAME/int8/ (the compressed-tensors INT8 model).
 *
 * main() builds the daemon object (options, serving layer, namespace), runs
 * the FUSE session with it as userdata, and takes it down in reverse order.
 */
#include <malloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "ready.h"
#include "watcher.h"

/* allow_other for a non-root user needs user_allow_other in /etc/fuse.conf:
 * the most common mistake, so say exactly what to change */
static int allow_other_ok(const struct fuse_args *args)
{
	int wanted = 0;
	for (int i = 0; i < args->argc; i++)
		wanted |= strstr(args->argv[i], "allow_other") != NULL;
	if (!wanted || getuid() == 0)
		return 1;
	FILE *f = fopen("/etc/fuse.conf", "r");
	char line[512];
	int ok = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		ok |= !strncmp(s, "user_allow_other", 16);
	}
	if (f)
		fclose(f);
	if (!ok)
		fprintf(stderr, "qstorefs: -o allow_other as a non-root user needs the line 'user_allow_other' in "
			"/etc/fuse.conf (uncommented); add it, run as root, or drop allow_other\n");
	return ok;
}

/* The serving layer and the namespace, first scan included. */
static int build(qfs_daemon *d)
{
	qsv_log_init(&d->log, d->o.log_level);
	qfs_handles_init(&d->handles);
	/* chunk buffers of 1 MiB: keep them out of the heap's arenas so that
	 * evicted chunks go back to the system and RSS tracks the cache */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	/* no threads yet: they would not survive fuse_daemonize's fork
	 * (serve() starts the prefetch workers after it) */
	d->srv = qsv_server_new(d->o.cache_size, d->o.prefetch_max, &d->log);
	if (d->srv)
		d->srv->low_views = d->o.lower_views;
	d->ns = d->srv ? qfs_ns_new(d->srv, &d->log, d->o.backing, d->o.ceiling) : NULL;
	if (!d->ns) {
		fprintf(stderr, "qstorefs: out of memory\n");
		return -1;
	}
	qfs_rescan(d);
	return 0;
}

/* Mount, serve until unmounted or signalled, unmount.  0 for a clean stop.
 * default_permissions: the kernel checks every access against the modes and
 * owners we report, which are the backing container's (with allow_other,
 * every local user reaches the mount). */
static int serve(qfs_daemon *d, struct fuse_args *args, qfs_watcher *w)
{
	/* the source is the backing directory as fstab names it: mount -a then
	 * sees the line is mounted already (with "qstorefs:DIR" it never did) */
	char fsopt[4 * PATH_MAX], src[2 * PATH_MAX];
	size_t o = 0;
	for (const char *p = d->o.backing; *p && o + 3 < sizeof(src); p++) {
		if (*p == ',' || *p == '\\')
			src[o++] = '\\';   /* fuse_opt's escape */
		src[o++] = *p;
	}
	src[o] = 0;
	snprintf(fsopt, sizeof(fsopt), "-oro,default_permissions,fsname=%s,subtype=qstorefs,max_read=1048576", src);
	if (fuse_opt_add_arg(args, fsopt) || !(d->se = fuse_session_new(args, &qfs_ops, sizeof(qfs_ops), d)))
		return 1;
	int rc = 1;
	if (fuse_set_signal_handlers(d->se))
		goto out_session;
	if (fuse_session_mount(d->se, d->o.mountpoint)) {
		fprintf(stderr, "qstorefs: cannot mount on %s\n", d->o.mountpoint);
		goto out_signals;
	}
	fuse_daemonize(d->o.foreground);
	if (!d->o.foreground)
		qsv_log_to_syslog(&d->log);   /* stderr is /dev/null from here on */
	atomic_store(&d->mounted, 1);
	if (qsv_server_start_workers(d->srv, d->o.workers))
		qsv_logf(&d->log, QSV_WARN, "cannot start the prefetch workers: reads decode on demand only");
	if (qfs_watcher_start(w))
		qsv_logf(&d->log, QSV_WARN, "cannot start the watcher: changes appear on the next listing");
	qfs_ready_start(d);
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, d->o.max_threads);
	fuse_loop_cfg_set_clone_fd(lc, 0);
	rc = fuse_session_loop_mt(d->se, lc) < 0 ? 1 : 0;   /* > 0: stopped by a signal: clean */
	fuse_loop_cfg_destroy(lc);
	sd_notify(0, "STOPPING=1");
	qfs_watcher_stop(w);
	fuse_session_unmount(d->se);
	qsv_logf(&d->log, QSV_INFO, "unmounted %s", d->o.mountpoint);
out_signals:
	fuse_remove_signal_handlers(d->se);
out_session:
	fuse_session_destroy(d->se);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	qfs_daemon d = { 0 };
	qfs_watcher w;
	int rc = qfs_options_parse(&args, &d.o), have_w = 0;
	qs_raise_fd_limit();   /* one descriptor per container (systemd's soft limit is 1024) */
	if (rc < 0 && !allow_other_ok(&args))
		rc = 2;
	if (rc < 0 && !(have_w = !qfs_watcher_init(&w, &d))) {   /* before any thread: it blocks SIGHUP */
		fprintf(stderr, "qstorefs: cannot set up signal handling\n");
		rc = 1;
	}
	if (rc < 0)
		rc = build(&d) ? 1 : serve(&d, &args, &w);
	if (have_w)
		qfs_watcher_stop(&w);   /* a second stop is harmless */
	if (d.srv) {
		qfs_handles_destroy(&d.handles);   /* handles whose release never came */
		qfs_ns_free(d.ns);
		qsv_server_free(d.srv);
	}
	qfs_options_free(&d.o);
	fuse_opt_free_args(&args);
	return rc;
}
