/* options.c - command line + configuration file; see options.h. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "options.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../serve/log.h"
#include "config.h"
#include "qstore.h"

/* what the command line said, as text: validated like the file's values */
struct cmdline {
	char *cache_size, *prefetch_max, *log_level, *ceiling, *config, *workers, *readahead_kb, *lower_views;
	char *backing;
	int n_nonopt;
};

#define OPT(t, p) { t, offsetof(struct cmdline, p), 1 }
static const struct fuse_opt qfs_opts[] = {
	OPT("cache_size=%s", cache_size), OPT("prefetch_max=%s", prefetch_max), OPT("log_level=%s", log_level),
	OPT("workers=%s", workers), OPT("readahead_kb=%s", readahead_kb), OPT("ceiling=%s", ceiling),
	OPT("config=%s", config), OPT("lower_views=%s", lower_views), FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	(void)out;
	struct cmdline *c = data;
	if (key == FUSE_OPT_KEY_NONOPT && c->n_nonopt++ == 0) {
		c->backing = strdup(arg);
		return 0;   /* ours; the second is the mountpoint, for libfuse */
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("usage: %s BACKING_DIR MOUNTPOINT [-o opt[,opt...]] [-f] [-d]\n\n"
	       "Mounts every NAME.qst of BACKING_DIR as NAME/ with model-<dtype>.safetensors,\n"
	       "model-int8.safetensors, <dtype>/ and int8/ (and model-int4.safetensors and int4/,\n"
	       "see lower_views), read-only, decoding on demand.\n\n"
	       "qstorefs options:\n"
	       "    -o cache_size=BYTES     decoded-chunk cache (default 64M; K/M/G/T suffixes)\n"
	       "    -o prefetch_max=BYTES   largest sequential prefetch window (default 64M; 0 = off)\n"
	       "    -o workers=N            prefetch threads (default: number of CPUs)\n"
	       "    -o readahead_kb=N       kernel readahead of the mount (default 4096)\n"
	       "    -o lower_views=LIST     views derived from the INT8 codes to present: int2..int7\n"
	       "                            separated by ':' (int4:int3), all or none (default int4)\n"
	       "    -o log_level=LEVEL      error, warning, info (default) or debug\n"
	       "    -o config=PATH          configuration file (default /etc/qstorefs.conf if it exists;\n"
	       "                            command-line options win; SIGHUP re-reads it)\n"
	       "    -o ceiling=BYTES        add /.qstorefs/ceiling, zeros served from memory, to\n"
	       "                            measure what FUSE alone delivers (benchmarks)\n\n", prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* The command line's values through the configuration validator. */
static int cmdline_conf(const struct cmdline *cl, qfs_conf *c)
{
	const char *keys[] = { "cache_size", "prefetch_max", "log_level", "workers", "readahead_kb", "lower_views" };
	const char *vals[] = { cl->cache_size, cl->prefetch_max, cl->log_level, cl->workers, cl->readahead_kb,
			       cl->lower_views };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (vals[i] && qfs_conf_set(c, keys[i], vals[i])) {
			fprintf(stderr, "qstorefs: bad value for %s: '%s' (%s)\n", keys[i], vals[i], qfs_conf_hint(keys[i]));
			return -1;
		}
	return 0;
}

/* The file's settings where the command line gave none. */
static void merge(qfs_conf *cmd, const qfs_conf *f)
{
	if (!cmd->has_cache_size && f->has_cache_size)
		cmd->cache_size = f->cache_size, cmd->has_cache_size = 1;
	if (!cmd->has_prefetch_max && f->has_prefetch_max)
		cmd->prefetch_max = f->prefetch_max, cmd->has_prefetch_max = 1;
	if (!cmd->has_workers && f->has_workers)
		cmd->workers = f->workers, cmd->has_workers = 1;
	if (!cmd->has_readahead_kb && f->has_readahead_kb)
		cmd->readahead_kb = f->readahead_kb, cmd->has_readahead_kb = 1;
	if (!cmd->has_lower_views && f->has_lower_views)
		cmd->lower_views = f->lower_views, cmd->has_lower_views = 1;
	if (!cmd->has_log_level && f->has_log_level)
		cmd->log_level = f->log_level, cmd->has_log_level = 1;
}

/* Read the configuration file (the default one only if it exists). */
static int load_file(const struct cmdline *cl, qfs_conf *fc, struct fuse_args *args, qfs_options *o)
{
	char err[1024];
	const char *path = cl->config ? cl->config : "/etc/qstorefs.conf";
	int rc = qfs_conf_load(path, fc, err, sizeof(err));
	if (rc == -2 && !cl->config)
		return 0;
	if (rc == -2)
		fprintf(stderr, "qstorefs: %s: configuration file not found\n", path);
	else if (rc)
		fprintf(stderr, "qstorefs: %s\n", err);
	if (rc)
		return -1;
	o->conf_path = strdup(path);
	if (fc->fuse_options) {
		char *opt = NULL;
		int bad = asprintf(&opt, "-o%s", fc->fuse_options) < 0 || fuse_opt_add_arg(args, opt);
		free(opt);
		if (bad)
			return -1;
	}
	return 0;
}

/* A mountpoint that is the backing directory, inside it or above it would
 * serve the backing files through the mount itself: the first lookup then
 * waits on the daemon, which waits on the lookup (readers in D state). */
static int mount_outside_backing(const char *backing, const char *mountpoint)
{
	char real[PATH_MAX];
	if (!realpath(mountpoint, real))
		return 1;   /* fuse reports a missing mountpoint in its own words */
	if (qs_within(real, backing) || qs_within(backing, real)) {
		fprintf(stderr, "qstorefs: mountpoint %s %s the backing directory %s: the containers would be read "
			"through the mount itself; mount somewhere else\n", mountpoint,
			!strcmp(real, backing) ? "is" : qs_within(real, backing) ? "is inside" : "contains", backing);
		return 0;
	}
	return 1;
}

/* mountinfo escapes ' ', '\t', '\n' and '\\' as \ooo */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++)
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	*o = 0;
}

/* Is a qstorefs already mounted on MOUNTPOINT?  (mount -a, a second start:
 * each would stack another daemon on top, silently.) */
static int already_mounted(const char *mountpoint)
{
	char real[PATH_MAX], line[3 * PATH_MAX];
	FILE *f = realpath(mountpoint, real) ? fopen("/proc/self/mountinfo", "r") : NULL;
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *sp = NULL, *mp = NULL, *dash = strstr(line, " - ");
		strtok_r(line, " ", &sp);                       /* id */
		for (int i = 0; i < 3 && strtok_r(NULL, " ", &sp); i++) {}   /* parent, dev, root */
		if (!(mp = strtok_r(NULL, " ", &sp)) || !dash)
			continue;
		unescape(mp);
		found = !strcmp(mp, real) && !strncmp(dash + 3, "fuse.qstorefs ", 14);
	}
	if (f)
		fclose(f);
	if (found)
		fprintf(stderr, "qstorefs: %s: a qstorefs is mounted there already (unmount it first: fusermount3 -u %s)\n",
			mountpoint, mountpoint);
	return found;
}

static int settle(qfs_options *o, const qfs_conf *c, const struct cmdline *cl, const qfs_conf *fc,
		  struct fuse_cmdline_opts *cmd)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* 64M: cold sequential reads measured flat from 16M to 1G (the kernel's
	 * page cache keeps what was read); a larger cache only helps a second
	 * view of the same chunks (README "Benchmark") */
	o->cache_size = c->has_cache_size ? c->cache_size : 64ull << 20;
	o->prefetch_max = c->has_prefetch_max ? c->prefetch_max : 64ull << 20;
	o->workers = c->has_workers ? c->workers : cpus > 0 ? (unsigned)cpus : 1;
	o->readahead_kb = c->has_readahead_kb ? c->readahead_kb : 4096;
	o->lower_views = c->has_lower_views ? c->lower_views : QS_OPEN_INT(4);
	o->log_level = cmd->debug ? QSV_DEBUG : c->has_log_level ? c->log_level : QSV_INFO;
	o->foreground = cmd->foreground;
	o->max_threads = cmd->max_threads ? cmd->max_threads : 16;
	if (cl->ceiling && qs_parse_bytes(cl->ceiling, &o->ceiling)) {
		fprintf(stderr, "qstorefs: bad value for ceiling: '%s' (bytes, K/M/G/T suffixes)\n", cl->ceiling);
		return 2;
	}
	const char *backing = cl->backing ? cl->backing : fc->backing;
	o->mountpoint = cmd->mountpoint ? cmd->mountpoint : fc->mountpoint ? strdup(fc->mountpoint) : NULL;
	cmd->mountpoint = NULL;
	if (!backing || !o->mountpoint) {
		fprintf(stderr, "qstorefs: need BACKING_DIR and MOUNTPOINT, on the command line or as 'backing' and "
			"'mountpoint' in the configuration file (see --help)\n");
		return 2;
	}
	char real[PATH_MAX];
	struct stat st;
	errno = 0;
	if (!realpath(backing, real) || stat(real, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "qstorefs: %s: not a directory%s%s\n", backing, errno ? ": " : "", errno ? strerror(errno) : "");
		return 1;
	}
	o->backing = strdup(real);
	if (!o->backing)
		return 1;
	return mount_outside_backing(o->backing, o->mountpoint) && !already_mounted(o->mountpoint) ? -1 : 1;
}

int qfs_options_parse(struct fuse_args *args, qfs_options *o)
{
	struct cmdline cl = { 0 };
	struct fuse_cmdline_opts cmd = { 0 };
	qfs_conf c = { 0 }, fc = { 0 };
	int rc = -1;
	memset(o, 0, sizeof(*o));
	if (fuse_opt_parse(args, &cl, qfs_opts, opt_proc) || fuse_parse_cmdline(args, &cmd)) {
		fprintf(stderr, "qstorefs: bad arguments (see --help)\n");
		rc = 2;
	} else if (cmd.show_help) {
		usage(args->argv[0]);
		rc = 0;
	} else if (cmd.show_version) {
		printf("qstorefs %s (libfuse %s)\n", QSTORE_VERSION_STRING, fuse_pkgversion());
		rc = 0;
	} else if (cmdline_conf(&cl, &c) || load_file(&cl, &fc, args, o)) {
		rc = 2;
	} else {
		merge(&c, &fc);
		rc = settle(o, &c, &cl, &fc, &cmd);
	}
	free(cmd.mountpoint);
	free(cl.cache_size); free(cl.prefetch_max); free(cl.log_level); free(cl.ceiling);
	free(cl.config); free(cl.workers); free(cl.readahead_kb); free(cl.lower_views); free(cl.backing);
	qfs_conf_free(&c);
	qfs_conf_free(&fc);
	return rc;
}

void qfs_options_free(qfs_options *o)
{
	free(o->backing);
	free(o->mountpoint);
	free(o->conf_path);
	memset(o, 0, sizeof(*o));
}
