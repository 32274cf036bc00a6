/*
 * qstorefs - mount a directory of qstore containers.
 *
 *   qstorefs BACKING_DIR MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [--help] [--version]
 *
 * For each NAME.qst: NAME/model-<dtype>.safetensors and
 * NAME/model-int8.safetensors (single-file views), NAME/<dtype>/ (the source
 * files) and NAME/int8/ (the compressed-tensors INT8 model).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "fetch.h"
#include "log.h"
#include "ns.h"

static qfs_state D;
qfs_state *qfs_daemon(void) { return &D; }

static int wake_fd = -1;          /* eventfd: SIGHUP and shutdown wake the watcher */
static volatile sig_atomic_t watcher_stop;
static char *conf_path;           /* re-read on SIGHUP */

/* ---- options ---------------------------------------------------------------- */

struct cfg {
	char *cache_size, *prefetch_max, *log_level, *ceiling, *config;
	unsigned workers, readahead_kb;
	int readahead_set;
	char *backing;
	int n_nonopt;
};

#define OPT(t, p) { t, offsetof(struct cfg, p), 1 }
static const struct fuse_opt qfs_opts[] = {
	OPT("cache_size=%s", cache_size), OPT("prefetch_max=%s", prefetch_max), OPT("log_level=%s", log_level),
	OPT("workers=%u", workers), OPT("readahead_kb=%u", readahead_kb), OPT("ceiling=%s", ceiling),
	OPT("config=%s", config), FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	(void)out;
	struct cfg *c = data;
	if (key == FUSE_OPT_KEY_NONOPT && c->n_nonopt++ == 0) {
		c->backing = strdup(arg);
		return 0;   /* ours; the second is the mountpoint, for libfuse */
	}
	return 1;
}

static int parse_bytes(const char *what, const char *s, uint64_t *out)
{
	if (qfs_parse_bytes(s, out)) {
		fprintf(stderr, "qstorefs: bad value for %s: '%s' (bytes, with an optional K, M or G suffix)\n", what, s);
		return -1;
	}
	return 0;
}

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

/* Values from the configuration file where the command line gave none. */
static int apply_conf(struct cfg *cfg, qfs_conf *fc, struct fuse_cmdline_opts *cmd, struct fuse_args *args)
{
	char err[1024];
	const char *path = cfg->config ? cfg->config : "/etc/qstorefs.conf";
	int rc = qfs_conf_load(path, fc, err, sizeof(err));
	if (rc == -2 && !cfg->config)
		return 0;   /* no default file: fine */
	if (rc == -2)
		fprintf(stderr, "qstorefs: %s: configuration file not found\n", path);
	else if (rc)
		fprintf(stderr, "qstorefs: %s\n", err);
	if (rc)
		return -1;
	conf_path = strdup(path);
	if (!cfg->backing && fc->backing)
		cfg->backing = strdup(fc->backing);
	if (!cmd->mountpoint && fc->mountpoint)
		cmd->mountpoint = strdup(fc->mountpoint);
	if (fc->has_cache_size && !cfg->cache_size)
		D.o.cache_size = fc->cache_size;
	if (fc->has_prefetch_max && !cfg->prefetch_max)
		D.o.prefetch_max = fc->prefetch_max;
	if (fc->has_workers && !cfg->workers)
		D.o.workers = fc->workers;
	if (fc->has_readahead_kb && !cfg->readahead_set)
		D.o.readahead_kb = fc->readahead_kb;
	if (fc->has_log_level && !cfg->log_level)
		qfs_log_level = fc->log_level;
	if (fc->fuse_options) {
		char *o = NULL;
		if (asprintf(&o, "-o%s", fc->fuse_options) < 0 || fuse_opt_add_arg(args, o)) {
			free(o);
			return -1;
		}
		free(o);
	}
	return 0;
}

/* SIGHUP: the file again; what can change live (log level, prefetch window)
 * changes, a bad file changes nothing. */
static void reload_conf(void)
{
	if (!conf_path)
		return;
	qfs_conf fc = { 0 };
	char err[1024];
	if (qfs_conf_load(conf_path, &fc, err, sizeof(err))) {
		qfs_log(QFS_ERR, "SIGHUP: %s: configuration not reloaded: %s", conf_path, err);
	} else {
		if (fc.has_log_level)
			qfs_log_level = fc.log_level;
		if (fc.has_prefetch_max)
			D.o.prefetch_max = fc.prefetch_max;
		qfs_log(QFS_INFO, "SIGHUP: %s reloaded (log_level, prefetch_max apply now; others at restart)", conf_path);
	}
	qfs_conf_free(&fc);
}

static void usage(const char *prog)
{
	printf("usage: %s BACKING_DIR MOUNTPOINT [-o opt[,opt...]] [-f] [-d]\n\n"
	       "Mounts every NAME.qst of BACKING_DIR as NAME/ with model-<dtype>.safetensors,\n"
	       "model-int8.safetensors, <dtype>/ and int8/, read-only, decoding on demand.\n\n"
	       "qstorefs options:\n"
	       "    -o cache_size=BYTES     decoded-chunk cache (default 1G; K/M/G suffixes)\n"
	       "    -o prefetch_max=BYTES   largest sequential prefetch window (default 64M; 0 = off)\n"
	       "    -o workers=N            prefetch threads (default: number of CPUs)\n"
	       "    -o readahead_kb=N       kernel readahead of the mount (default 4096)\n"
	       "    -o log_level=LEVEL      error, warning, info (default) or debug\n"
	       "    -o config=PATH          configuration file (default /etc/qstorefs.conf if it exists;\n"
	       "                            command-line options win; SIGHUP re-reads it)\n"
	       "    -o ceiling=BYTES        add /.qstorefs/ceiling, zeros served from memory, to\n"
	       "                            measure what FUSE alone delivers (benchmarks)\n\n", prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* ---- background threads --------------------------------------------------------- */

static void on_hup(int sig)
{
	(void)sig;
	uint64_t one = 1;
	if (write(wake_fd, &one, sizeof(one)) < 0) {}
}

/* Watch the backing directory: containers added, renamed over, removed. */
static void *watcher(void *arg)
{
	(void)arg;
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in < 0 || inotify_add_watch(in, D.o.backing, IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM
					| IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF) < 0)
		qfs_log(QFS_WARN, "%s: cannot watch for changes (%s): new containers appear on the next listing",
			D.o.backing, strerror(errno));
	while (!watcher_stop) {
		struct pollfd p[2] = { { wake_fd, POLLIN, 0 }, { in, POLLIN, 0 } };
		if (poll(p, in >= 0 ? 2 : 1, 1000) <= 0)
			continue;
		char buf[4096];
		uint64_t v;
		if (p[0].revents && read(wake_fd, &v, sizeof(v)) > 0 && !watcher_stop) {
			qfs_log(QFS_INFO, "SIGHUP: rescanning %s", D.o.backing);
			reload_conf();
		}
		if (p[1].revents)
			while (read(in, buf, sizeof(buf)) > 0) {}
		if (watcher_stop)
			break;
		usleep(20000);   /* let a burst of renames settle */
		while (in >= 0 && read(in, buf, sizeof(buf)) > 0) {}
		qfs_ns_rescan();
	}
	if (in >= 0)
		close(in);
	return NULL;
}

/* Once the mount answers: raise its readahead, announce readiness. */
static void *ready(void *arg)
{
	(void)arg;
	struct stat st;
	if (stat(D.o.mountpoint, &st)) {   /* served by the loop: the mount answers */
		qfs_log(QFS_ERR, "%s: mount does not answer: %s", D.o.mountpoint, strerror(errno));
		return NULL;
	}
	char path[128];
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
	FILE *f = fopen(path, "w");
	if (!f || fprintf(f, "%u\n", D.o.readahead_kb) < 0 || fclose(f)) {
		if (f)
			f = NULL;
		qfs_log(QFS_DEBUG, "%s: cannot raise readahead (not root?)", path);
	}
	qfs_log(QFS_INFO, "mounted %s on %s (cache %llu MiB, prefetch up to %llu MiB, %u workers)", D.o.backing,
		D.o.mountpoint, (unsigned long long)(D.o.cache_size >> 20), (unsigned long long)(D.o.prefetch_max >> 20),
		D.o.workers);
	sd_notify(0, "READY=1");
	return NULL;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd;
	struct cfg cfg = { 0 };
	qfs_conf fc = { 0 };
	int rc = 1;
	if (fuse_opt_parse(&args, &cfg, qfs_opts, opt_proc) || fuse_parse_cmdline(&args, &cmd)) {
		fprintf(stderr, "qstorefs: bad arguments (see --help)\n");
		return 2;
	}
	if (cmd.show_help) {
		usage(argv[0]);
		return 0;
	}
	if (cmd.show_version) {
		printf("qstorefs %s (libfuse %s)\n", QSTORE_VERSION_STRING, fuse_pkgversion());
		return 0;
	}
	D.o.cache_size = 1ull << 30;
	D.o.prefetch_max = 64ull << 20;
	D.o.workers = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	D.o.readahead_kb = 4096;
	cfg.readahead_set = cfg.readahead_kb != 0;
	if (cfg.readahead_kb)
		D.o.readahead_kb = cfg.readahead_kb;
	if (cfg.workers)
		D.o.workers = cfg.workers;
	if (apply_conf(&cfg, &fc, &cmd, &args))
		return 2;
	if ((cfg.cache_size && parse_bytes("cache_size", cfg.cache_size, &D.o.cache_size))
	    || (cfg.prefetch_max && parse_bytes("prefetch_max", cfg.prefetch_max, &D.o.prefetch_max))
	    || (cfg.ceiling && parse_bytes("ceiling", cfg.ceiling, &D.o.ceiling)))
		return 2;
	if (D.o.cache_size < (16u << 20)) {
		fprintf(stderr, "qstorefs: cache_size must be at least 16M (it holds whole decoded chunks)\n");
		return 2;
	}
	if (cfg.log_level && (qfs_log_level = qfs_log_parse_level(cfg.log_level)) < 0) {
		fprintf(stderr, "qstorefs: bad log_level '%s' (error, warning, info, debug)\n", cfg.log_level);
		return 2;
	}
	if (cmd.debug)
		qfs_log_level = QFS_DEBUG;
	struct stat st;
	char real[PATH_MAX];
	if (!cfg.backing || !cmd.mountpoint) {
		fprintf(stderr, "qstorefs: need BACKING_DIR and MOUNTPOINT, on the command line or as 'backing' and "
			"'mountpoint' in the configuration file (see --help)\n");
		return 2;
	}
	if (!allow_other_ok(&args))
		return 2;
	if (!realpath(cfg.backing, real) || stat(real, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "qstorefs: %s: not a directory: %s\n", cfg.backing, errno ? strerror(errno) : "");
		return 1;
	}
	D.o.backing = strdup(real);
	D.o.mountpoint = cmd.mountpoint;
	/* chunk buffers of 1 MiB: keep them out of the heap's arenas so that
	 * evicted chunks go back to the system and RSS tracks the cache */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	D.cache = qfs_cache_new(D.o.cache_size);
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!D.cache || wake_fd < 0 || qfs_ns_init()) {
		fprintf(stderr, "qstorefs: out of memory\n");
		return 1;
	}
	qfs_ns_rescan();
	char fsopt[PATH_MAX + 128];
	snprintf(fsopt, sizeof(fsopt), "-oro,fsname=qstorefs:%s,subtype=qstorefs,max_read=1048576", D.o.backing);
	fuse_opt_add_arg(&args, fsopt);
	D.se = fuse_session_new(&args, &qfs_ops, sizeof(qfs_ops), NULL);
	if (!D.se)
		goto out;
	if (fuse_set_signal_handlers(D.se))
		goto out_session;
	struct sigaction sa = { .sa_handler = on_hup };
	sigaction(SIGHUP, &sa, NULL);   /* HUP rescans instead of unmounting */
	if (fuse_session_mount(D.se, cmd.mountpoint)) {
		fprintf(stderr, "qstorefs: cannot mount on %s\n", cmd.mountpoint);
		goto out_signals;
	}
	fuse_daemonize(cmd.foreground);
	atomic_store(&D.mounted, 1);
	pthread_t wt, rt;
	int have_w = !pthread_create(&wt, NULL, watcher, NULL);
	if (qfs_prefetch_start(D.o.workers))
		qfs_log(QFS_WARN, "prefetch threads could not all start");
	if (!pthread_create(&rt, NULL, ready, NULL))
		pthread_detach(rt);
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, cmd.max_threads ? cmd.max_threads : 16);
	fuse_loop_cfg_set_clone_fd(lc, 0);
	rc = fuse_session_loop_mt(D.se, lc) < 0 ? 1 : 0;   /* > 0: stopped by a signal: clean */
	fuse_loop_cfg_destroy(lc);
	sd_notify(0, "STOPPING=1");
	watcher_stop = 1;
	on_hup(0);
	if (have_w)
		pthread_join(wt, NULL);
	qfs_prefetch_stop();
	fuse_session_unmount(D.se);
	qfs_log(QFS_INFO, "unmounted %s", cmd.mountpoint);
out_signals:
	fuse_remove_signal_handlers(D.se);
out_session:
	fuse_session_destroy(D.se);
out:
	qfs_release_all();
	qfs_ns_destroy();
	qfs_cache_free(D.cache);
	free(D.o.backing);
	free(cmd.mountpoint);
	free(cfg.backing);
	free(cfg.cache_size);
	free(cfg.prefetch_max);
	free(cfg.log_level);
	free(cfg.ceiling);
	free(cfg.config);
	free(conf_path);
	qfs_conf_free(&fc);
	fuse_opt_free_args(&args);
	return rc;
}
