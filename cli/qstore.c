/*
 * qstore - command-line front end of libqstore: pack, unpack, verify, info.
 * Everything of substance lives in the library; this file parses options,
 * shows progress and prints.
 *
 * Exit status: 0 success, 1 an error (bad or damaged input, I/O, verify
 * found problems), 2 bad usage (unknown option, missing argument).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "out.h"
#include "qstore.h"

enum { EXIT_ERROR = 1, EXIT_USAGE = 2 };

static volatile int cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
}

/* ---- help ---------------------------------------------------------------- */

static const char SYNOPSIS[] =
	"usage: qstore pack SRC -o OUT.qst [options]\n"
	"       qstore unpack X.qst -o DIR [--precision high|int8|int2..int7] [options]\n"
	"       qstore verify X.qst [--lower LIST] [-q]\n"
	"       qstore info X.qst [--json]\n"
	"       qstore hub-link MNT/NAME ORG/REPO [--cache DIR] [--precision VIEW]\n"
	"       qstore --version | --help | COMMAND --help\n";

static const char *const HELP[][2] = {
	{ "pack",
	  "usage: qstore pack SRC -o OUT.qst [options]\n"
	  "\n"
	  "Pack a model directory (config.json, model.safetensors or shards + index,\n"
	  "tokenizer files) or one .safetensors file into one container holding the\n"
	  "INT8 codes of every Linear weight and what rebuilds the source bytes exactly.\n"
	  "\n"
	  "  -o, --output OUT.qst       the container to write (required)\n"
	  "  -f, --force                replace OUT if it exists; a result identical to it\n"
	  "                             leaves it untouched (same inode and mtime)\n"
	  "  -t, --threads N            encoder threads, 1-256 (default: one per online CPU)\n"
	  "      --chunk-size BYTES     decoded bytes per chunk, 64 to 16M, K/M suffixes\n"
	  "                             (default: 1M)\n"
	  "      --int8-codes MODE      auto, stored or derived (default: auto): keep each\n"
	  "                             quantised chunk's INT8 codes (stored: the INT8 view\n"
	  "                             decodes fastest) or derive them from the floats\n"
	  "                             (derived: the high view decodes fastest); auto derives\n"
	  "                             unless storing is more than 1% smaller\n"
	  "      --no-progress          no progress on stderr (default: a live line on a\n"
	  "                             terminal, else a plain line every 5 s)\n"
	  "      --progress             progress on stderr (the default; for scripts of 0.2)\n"
	  "  -q, --quiet                no progress and no summary; errors only\n"
	  "  -h, --help                 this help\n" },
	{ "unpack",
	  "usage: qstore unpack X.qst -o DIR [options]\n"
	  "\n"
	  "Write one view of a container into the new directory DIR (it must not exist).\n"
	  "\n"
	  "  -o, --output DIR           the directory to create (required)\n"
	  "      --precision VIEW       high (the source files, byte for byte), int8 (a\n"
	  "                             compressed-tensors INT8 model directory) or\n"
	  "                             int2..int7 (pack-quantized, derived from the INT8\n"
	  "                             codes: int4 with groups of 128, the others per\n"
	  "                             channel) (default: high)\n"
	  "      --no-progress          no progress on stderr\n"
	  "  -q, --quiet                no progress and no summary; errors only\n"
	  "  -h, --help                 this help\n" },
	{ "verify",
	  "usage: qstore verify X.qst [options]\n"
	  "\n"
	  "Decode both stored views, checking every chunk checksum and every file's\n"
	  "SHA-256, and the lower views asked for (each file decoded through every chunk\n"
	  "check; its SHA-256, computed, is printed).  Exit status 1 when anything is\n"
	  "wrong; each problem is one line on stderr.\n"
	  "\n"
	  "      --lower LIST           lower views to decode too: comma-separated\n"
	  "                             int2..int7, all or none (default: int4)\n"
	  "      --no-progress          no progress on stderr\n"
	  "  -q, --quiet                print only problems (no per-file lines, no progress)\n"
	  "  -h, --help                 this help\n" },
	{ "info",
	  "usage: qstore info X.qst [options]\n"
	  "\n"
	  "Show sizes, the entropy floor, the files of both views with their SHA-256 and\n"
	  "the tensors (dtype, shape, stored bytes, whether and why quantised).\n"
	  "\n"
	  "      --json                 the same as JSON, for tools\n"
	  "  -h, --help                 this help\n" },
	{ "hub-link",
	  "usage: qstore hub-link MNT/NAME ORG/REPO [options]\n"
	  "\n"
	  "Make the model NAME of a qstorefs mount loadable as ORG/REPO from a HuggingFace\n"
	  "hub cache (from_pretrained(\"ORG/REPO\"), SentenceTransformer(\"ORG/REPO\"), with\n"
	  "HF_HUB_OFFLINE=1): models--ORG--REPO/snapshots/REVISION/ of symlinks into the\n"
	  "mount, refs/main = REVISION, derived from the container (a new version of the\n"
	  "container gets a new revision).\n"
	  "\n"
	  "      --cache DIR            the hub cache (default: $HF_HUB_CACHE, else\n"
	  "                             $HF_HOME/hub, else ~/.cache/huggingface/hub)\n"
	  "      --precision VIEW       high (the source files), int8 or int2..int7 (a view\n"
	  "                             the mount presents: see qstorefs lower_views)\n"
	  "                             (default: high)\n"
	  "  -h, --help                 this help\n" },
};
#define N_CMDS (sizeof(HELP) / sizeof(HELP[0]))

static void usage(FILE *o)
{
	fputs(SYNOPSIS, o);
	if (o == stdout)
		fputs("\nSRC is a model directory or one .safetensors file.  A container holds the\n"
		      "INT8 codes of every Linear weight plus what rebuilds the original bytes\n"
		      "exactly.  `qstore COMMAND --help` lists each command's options.\n"
		      "\n"
		      "Exit status: 0 success, 1 error, 2 bad usage.\n", o);
}

static int help(const char *cmd)
{
	for (size_t i = 0; i < N_CMDS; i++)
		if (!strcmp(HELP[i][0], cmd)) {
			fputs(HELP[i][1], stdout);
			return 0;
		}
	say(stderr, "qstore: unknown command '%s'", cmd);
	usage(stderr);
	return EXIT_USAGE;
}

static int die(const char *cmd, const qs_error *e)
{
	say(stderr, "qstore %s: %s", cmd, e->msg);
	return EXIT_ERROR;
}

static int bad_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	char msg[512];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say(stderr, "qstore %s: %s (qstore %s --help lists the options)", cmd, msg, cmd);
	return EXIT_USAGE;
}

/* getopt_long with the messages of this program: unknown options and missing
 * arguments are reported as "qstore CMD: ..." and make the caller exit 2.
 * Returns the option, -1 at the end, or '?' after reporting. */
static int next_opt(const char *cmd, int argc, char **argv, const char *shorts, const struct option *lo)
{
	opterr = 0;
	int c = getopt_long(argc, argv, shorts, lo, NULL);
	if (c == '?') {
		if (optopt)
			bad_usage(cmd, "unknown option '-%c'", optopt);
		else
			bad_usage(cmd, "unknown option '%s'", argv[optind - 1]);
	} else if (c == ':') {
		bad_usage(cmd, "option '%s' needs a value", argv[optind - 1]);
		c = '?';
	}
	return c;
}

/* ---- progress ------------------------------------------------------------ */

/* On a terminal, one line rewritten in place; elsewhere (CI logs, the
 * journal) a plain line every QSTORE_PROGRESS_SECONDS (default 5). */
typedef struct progress_ui {
	const char *cmd;
	int tty;
	double t0, every, last;
} progress_ui;

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
	progress_ui *u = ctx;
	double t = now_s(), el = t - u->t0, rate = el > 0 ? (double)done / el : 0;
	double eta = rate > 0 ? (double)(total - done) / rate : 0, pct = total ? 100.0 * (double)done / (double)total : 100;
	if (u->tty) {
		fprintf(stderr, "\r\033[Kqstore %s: %.1f / %.1f MB (%.0f%%)  %.1f MB/s  ETA %.0f s", u->cmd, (double)done / 1e6,
			(double)total / 1e6, pct, rate / 1e6, eta);
		if (done == total)
			fputs("\n", stderr);
	} else if (t - u->last >= u->every) {
		fprintf(stderr, "qstore %s: %.1f of %.1f MB (%.0f%%), %.1f MB/s, ETA %.0f s\n", u->cmd, (double)done / 1e6,
			(double)total / 1e6, pct, rate / 1e6, eta);
		u->last = t;
	}
	fflush(stderr);
}

static qs_progress progress_for(progress_ui *u, const char *cmd, int on)
{
	const char *e = getenv("QSTORE_PROGRESS_SECONDS");
	char *end;
	double every = e ? strtod(e, &end) : 5, t = now_s();
	*u = (progress_ui){ cmd, isatty(2), t, e && *end == 0 && every >= 0 ? every : 5, t };
	return (qs_progress){ on ? show_progress : NULL, u };
}

/* ---- commands ------------------------------------------------------------ */

static int parse_codes(const char *s, int *out)
{
	static const char *const CODES[] = { "auto", "stored", "derived" };
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, CODES[i])) {
			*out = i;
			return 0;
		}
	return -1;
}

static int cmd_pack(int argc, char **argv)
{
	enum { O_CHUNK = 256, O_CODES, O_NOPROG, O_PROG };
	static const struct option lo[] = {
		{ "output", required_argument, 0, 'o' }, { "threads", required_argument, 0, 't' },
		{ "force", no_argument, 0, 'f' }, { "quiet", no_argument, 0, 'q' },
		{ "progress", no_argument, 0, O_PROG }, { "no-progress", no_argument, 0, O_NOPROG },
		{ "chunk-size", required_argument, 0, O_CHUNK }, { "int8-codes", required_argument, 0, O_CODES },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	qs_pack_options opt = { 0 };
	const char *out = NULL;
	uint64_t bytes;
	int c, quiet = 0, prog = 1;
	while ((c = next_opt("pack", argc, argv, ":o:t:fqh", lo)) != -1) {
		char *end;
		switch (c) {
		case 'o': out = optarg; break;
		case 'f': opt.force = 1; break;
		case 'q': quiet = 1; break;
		case O_PROG: prog = 1; break;
		case O_NOPROG: prog = 0; break;
		case 't':
			opt.threads = (int)strtol(optarg, &end, 10);
			if (*end || opt.threads < 1 || opt.threads > 256)
				return bad_usage("pack", "--threads wants a number from 1 to 256, got '%s'", optarg);
			break;
		case O_CHUNK:
			if (qs_parse_bytes(optarg, &bytes) || bytes < 64 || bytes > (16u << 20))
				return bad_usage("pack", "--chunk-size wants a byte count from 64 to 16M (K or M suffix), "
						 "got '%s'", optarg);
			opt.chunk_bytes = (size_t)bytes;
			break;
		case O_CODES:
			if (parse_codes(optarg, &opt.int8_codes))
				return bad_usage("pack", "--int8-codes wants auto, stored or derived, got '%s'", optarg);
			break;
		case 'h': return help("pack");
		default: return EXIT_USAGE;
		}
	}
	if (optind >= argc || !out || argc - optind > 1)
		return bad_usage("pack", "%s", argc - optind > 1 ? "one SRC only" : !out && optind >= argc
				 ? "missing SRC and -o OUT.qst" : !out ? "missing -o OUT.qst" : "missing SRC");
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	opt.cancel = &cancel_flag;
	progress_ui ui;
	opt.progress = progress_for(&ui, "pack", prog && !quiet);
	qs_error e = { 0 };
	qs_pack_stats st;
	if (qs_pack(argv[optind], out, &opt, &st, &e))
		return die("pack", &e);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	if (!quiet)
		say(stdout, "packed %s -> %s: %llu -> %llu bytes (%.1f%%) in %.2f s, %.1f MB/s, peak RSS %.1f MiB%s",
		    argv[optind], out, (unsigned long long)st.source_bytes, (unsigned long long)st.container_bytes,
		    st.source_bytes ? 100.0 * (double)st.container_bytes / (double)st.source_bytes : 0.0, st.seconds,
		    st.seconds > 0 ? (double)st.source_bytes / st.seconds / 1e6 : 0.0, ru.ru_maxrss / 1024.0,
		    st.unchanged ? "; identical to the existing file, which was left untouched" : "");
	return 0;
}

/* The one container argument of CMD: NULL and *rc set when it is missing,
 * repeated or cannot be opened. */
static qs_container *open_one(const char *cmd, int argc, char **argv, const char *also_missing, unsigned flags,
			      int *rc)
{
	if (optind >= argc || argc - optind > 1 || also_missing) {
		*rc = bad_usage(cmd, "%s", argc - optind > 1 ? "one container only"
				: optind >= argc && also_missing ? "missing X.qst and -o DIR"
				: optind >= argc ? "missing X.qst" : also_missing);
		return NULL;
	}
	qs_error e = { 0 };
	qs_container *c = qs_open_ex(argv[optind], flags, &e);
	if (!c)
		*rc = die(cmd, &e);
	return c;
}

static int cmd_unpack(int argc, char **argv)
{
	enum { O_PREC = 256, O_NOPROG };
	static const struct option lo[] = {
		{ "output", required_argument, 0, 'o' }, { "precision", required_argument, 0, O_PREC },
		{ "quiet", no_argument, 0, 'q' }, { "no-progress", no_argument, 0, O_NOPROG },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	const char *out = NULL;
	qs_view view = QS_VIEW_HIGH;
	int c, quiet = 0, prog = 1, rc = 0;
	while ((c = next_opt("unpack", argc, argv, ":o:qh", lo)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'q': quiet = 1; break;
		case O_NOPROG: prog = 0; break;
		case O_PREC:
			if ((int)(view = (qs_view)qs_view_parse(optarg)) < 0)
				return bad_usage("unpack", "--precision is high, int8 or int2..int7, got '%s'", optarg);
			break;
		case 'h': return help("unpack");
		default: return EXIT_USAGE;
		}
	}
	qs_container *ct = open_one("unpack", argc, argv, out ? NULL : "missing -o DIR",
				    view >= QS_VIEW_INT2 ? QS_OPEN_INT(view) : 0, &rc);
	if (!ct)
		return rc;
	progress_ui ui;
	qs_progress pr = progress_for(&ui, "unpack", prog && !quiet);
	qs_error e = { 0 };
	rc = qs_unpack(ct, view, out, &pr, &e) ? die("unpack", &e) : 0;
	if (!rc && !quiet)
		say(stdout, "unpacked %zu files (%s view) into %s", qs_file_count(ct, view), qs_view_name(view), out);
	qs_close(ct);
	return rc;
}

static void print_line(void *ctx, const char *line)
{
	int fails_only = *(int *)ctx, ok = !strncmp(line, "ok", 2);
	if (!ok)
		say(stderr, "%s", line);
	else if (!fails_only)
		say(stdout, "%s", line);
}

static int cmd_verify(int argc, char **argv)
{
	enum { O_NOPROG = 256, O_LOWER };
	static const struct option lo[] = {
		{ "quiet", no_argument, 0, 'q' }, { "no-progress", no_argument, 0, O_NOPROG },
		{ "lower", required_argument, 0, O_LOWER }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	int quiet = 0, prog = 1, c, rc = 0;
	unsigned lower = QS_OPEN_INT(4);
	while ((c = next_opt("verify", argc, argv, ":qh", lo)) != -1) {
		if (c == 'q') quiet = 1;
		else if (c == O_NOPROG) prog = 0;
		else if (c == O_LOWER && qs_parse_low_views(optarg, &lower))
			return bad_usage("verify", "--lower is a comma-separated list of int2..int7, all or none, got '%s'",
					 optarg);
		else if (c == 'h') return help("verify");
		else if (c != O_LOWER) return EXIT_USAGE;
	}
	qs_container *ct = open_one("verify", argc, argv, NULL, lower, &rc);
	if (!ct)
		return rc;
	progress_ui ui;
	qs_progress pr = progress_for(&ui, "verify", prog && !quiet);
	qs_error e = { 0 };
	long n = qs_verify(ct, print_line, &quiet, &pr, &e);
	rc = n < 0 ? die("verify", &e) : n > 0 ? EXIT_ERROR : 0;
	if (n > 0)
		say(stderr, "qstore verify: %s: %ld problem(s)", argv[optind], n);
	else if (!n) {
		size_t low = 0;
		for (int v = QS_VIEW_INT2; v < QS_N_VIEWS; v++)
			low += qs_file_count(ct, (qs_view)v);
		say(stdout, "%s: intact (%zu high + %zu int8 files, every chunk and SHA-256 checked; %zu lower-view "
		    "files decoded)", argv[optind], qs_file_count(ct, QS_VIEW_HIGH), qs_file_count(ct, QS_VIEW_INT8), low);
	}
	qs_close(ct);
	return rc;
}


/* the hub's own default: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME or ~/.cache */
static const char *hub_cache(char *buf, size_t cap)
{
	const char *v;
	if ((v = getenv("HF_HUB_CACHE")) && *v)
		return v;
	if ((v = getenv("HF_HOME")) && *v)
		snprintf(buf, cap, "%s/hub", v);
	else if ((v = getenv("XDG_CACHE_HOME")) && *v)
		snprintf(buf, cap, "%s/huggingface/hub", v);
	else
		snprintf(buf, cap, "%s/.cache/huggingface/hub", getenv("HOME") ? getenv("HOME") : ".");
	return buf;
}

static int cmd_hub_link(int argc, char **argv)
{
	enum { O_CACHE = 256, O_PREC };
	static const struct option lo[] = {
		{ "cache", required_argument, 0, O_CACHE }, { "precision", required_argument, 0, O_PREC },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	const char *cache = NULL;
	char buf[4096];
	int c, view = QS_VIEW_HIGH;
	while ((c = next_opt("hub-link", argc, argv, ":h", lo)) != -1) {
		if (c == O_CACHE) cache = optarg;
		else if (c == O_PREC && (view = qs_view_parse(optarg)) < 0)
			return bad_usage("hub-link", "--precision is high, int8 or int2..int7, got '%s'", optarg);
		else if (c == O_PREC) continue;
		else if (c == 'h') return help("hub-link");
		else return EXIT_USAGE;
	}
	if (argc - optind != 2)
		return bad_usage("hub-link", "%s", argc - optind > 2 ? "two arguments only"
				 : argc - optind == 1 ? "missing ORG/REPO" : "missing MNT/NAME and ORG/REPO");
	return qstore_hub_link(argv[optind], argv[optind + 1], cache ? cache : hub_cache(buf, sizeof(buf)), view);
}


static int cmd_info(int argc, char **argv)
{
	static const struct option lo[] = { { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	int json = 0, c, rc = 0;
	while ((c = next_opt("info", argc, argv, ":h", lo)) != -1) {
		if (c == 'j') json = 1;
		else if (c == 'h') return help("info");
		else return EXIT_USAGE;
	}
	qs_container *ct = open_one("info", argc, argv, NULL, QS_OPEN_LOW_VIEWS, &rc);
	if (!ct)
		return rc;
	if (json) {
		qs_error e = { 0 };
		char *s = qs_info_json(ct, &e);
		rc = s ? 0 : die("info", &e);
		if (s)
			printf("%s\n", s);   /* JSON: control characters are escaped in it already */
		free(s);
	} else {
		rc = qstore_info(ct, argv[optind]);
	}
	qs_close(ct);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	qs_raise_fd_limit();
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
		say(stdout, "qstore %s (container format %d, reads %d-%d, %s decoder)", QSTORE_VERSION_STRING,
		    QSTORE_CONTAINER_FORMAT, QSTORE_CONTAINER_FORMAT_OLDEST, QSTORE_CONTAINER_FORMAT, qs_decoder_kernels());
		return 0;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		if (argc > 2 && strcmp(cmd, "help") == 0)
			return help(argv[2]);
		usage(stdout);
		return 0;
	}
	argc--;
	argv++;
	if (!strcmp(cmd, "pack")) return cmd_pack(argc, argv);
	if (!strcmp(cmd, "unpack")) return cmd_unpack(argc, argv);
	if (!strcmp(cmd, "verify")) return cmd_verify(argc, argv);
	if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
	if (!strcmp(cmd, "hub-link")) return cmd_hub_link(argc, argv);
	say(stderr, "qstore: unknown command '%s'", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
