/*
 * qstore - command-line front end of libqstore: pack, unpack, verify, info.
 * Everything of substance lives in the library; this file parses options and
 * prints.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "qstore.h"

static volatile int cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
}

static void usage(FILE *o)
{
	fprintf(o,
		"usage: qstore pack SRC -o OUT.qst [--threads N] [--progress] [--chunk-size BYTES]\n"
		"                   [--int8-codes auto|stored|derived]\n"
		"       qstore unpack X.qst -o DIR [--precision high|int8]\n"
		"       qstore verify X.qst\n"
		"       qstore info X.qst [--json]\n"
		"       qstore --version | --help\n"
		"\n"
		"SRC is a model directory (config.json, model.safetensors or shards + index,\n"
		"tokenizer files) or one .safetensors file.  A container holds the INT8 codes\n"
		"of every Linear weight plus what rebuilds the original bytes exactly.\n");
}

/* One line of output.  Every name in it comes from a file (tensor names,
 * paths, messages quoting them): control characters are shown as \xNN so
 * that a name cannot move the cursor, recolour the terminal or fake lines. */
static void say(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(FILE *f, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t cap = 4 * (size_t)n + 1;
	char *safe = malloc(cap);
	if (safe) {
		qs_escape(line, safe, cap);
		fprintf(f, "%s\n", safe);
	}
	free(safe);
	free(line);
}

static int die(const char *cmd, const qs_error *e)
{
	say(stderr, "qstore %s: %s", cmd, e->msg);
	return 1;
}

static int cmd_pack(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, 0, 'o' }, { "threads", required_argument, 0, 't' },
		{ "progress", no_argument, 0, 'p' }, { "chunk-size", required_argument, 0, 'c' },
		{ "int8-codes", required_argument, 0, 'i' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	static const char *const CODES[] = { "auto", "stored", "derived" };
	qs_pack_options opt = { 0 };
	const char *out = NULL;
	uint64_t bytes;
	int c;
	while ((c = getopt_long(argc, argv, "o:t:pc:i:h", lo, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'o': out = optarg; break;
		case 't':
			opt.threads = (int)strtol(optarg, &end, 10);
			if (*end || opt.threads < 1 || opt.threads > 256) {
				say(stderr, "qstore pack: --threads wants a number from 1 to 256, got '%s'", optarg);
				return 2;
			}
			break;
		case 'p': opt.progress = isatty(2); break;
		case 'c':
			if (qs_parse_bytes(optarg, &bytes) || bytes < 64 || bytes > (16u << 20)) {
				say(stderr, "qstore pack: --chunk-size wants a byte count from 64 to 16M (K or M suffix), "
					"got '%s'", optarg);
				return 2;
			}
			opt.chunk_bytes = (size_t)bytes;
			break;
		case 'i':
			for (opt.int8_codes = 0; opt.int8_codes < 3 && strcmp(optarg, CODES[opt.int8_codes]); opt.int8_codes++)
				;
			if (opt.int8_codes == 3) {
				say(stderr, "qstore pack: --int8-codes wants auto, stored or derived, got '%s'", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !out) {
		say(stderr, "qstore pack: need SRC and -o OUT.qst");
		usage(stderr);
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	opt.cancel = &cancel_flag;
	qs_error e = { 0 };
	qs_pack_stats st;
	if (qs_pack(argv[optind], out, &opt, &st, &e))
		return die("pack", &e);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	say(stdout, "packed %s -> %s: %llu -> %llu bytes (%.1f%%) in %.2f s, %.1f MB/s, peak RSS %.1f MiB",
	       argv[optind], out, (unsigned long long)st.source_bytes, (unsigned long long)st.container_bytes,
	       st.source_bytes ? 100.0 * (double)st.container_bytes / (double)st.source_bytes : 0.0, st.seconds,
	       st.seconds > 0 ? (double)st.source_bytes / st.seconds / 1e6 : 0.0, ru.ru_maxrss / 1024.0);
	return 0;
}

static qs_container *open_one(const char *cmd, int argc, char **argv)
{
	if (optind != argc - 1) {
		say(stderr, "qstore %s: need exactly one container", cmd);
		usage(stderr);
		return NULL;
	}
	qs_error e = { 0 };
	qs_container *c = qs_open(argv[optind], &e);
	if (!c)
		die(cmd, &e);
	return c;
}

static int cmd_unpack(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "output", required_argument, 0, 'o' }, { "precision", required_argument, 0, 'P' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	const char *out = NULL;
	qs_view view = QS_VIEW_HIGH;
	int c;
	while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'P':
			if (!strcmp(optarg, "high")) view = QS_VIEW_HIGH;
			else if (!strcmp(optarg, "int8")) view = QS_VIEW_INT8;
			else {
				say(stderr, "qstore unpack: --precision is 'high' or 'int8', got '%s'", optarg);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!out) {
		say(stderr, "qstore unpack: need -o DIR");
		return 2;
	}
	qs_container *ct = open_one("unpack", argc, argv);
	if (!ct)
		return 1;
	qs_error e = { 0 };
	int rc = qs_unpack(ct, view, out, &e) ? die("unpack", &e) : 0;
	if (!rc)
		say(stdout, "unpacked %zu files (%s view) into %s", qs_file_count(ct, view),
		       view == QS_VIEW_HIGH ? "high" : "int8", out);
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
	int quiet = 0, c;
	static const struct option lo[] = { { "quiet", no_argument, 0, 'q' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		if (c == 'q') quiet = 1;
		else if (c == 'h') { usage(stdout); return 0; }
		else { usage(stderr); return 2; }
	}
	qs_container *ct = open_one("verify", argc, argv);
	if (!ct)
		return 1;
	qs_error e = { 0 };
	long n = qs_verify(ct, print_line, &quiet, &e);
	int rc = n < 0 ? die("verify", &e) : n > 0 ? 1 : 0;
	if (n > 0)
		say(stderr, "qstore verify: %s: %ld problem(s)", argv[optind], n);
	else if (!n)
		say(stdout, "%s: intact (%zu high + %zu int8 files, every chunk and SHA-256 checked)", argv[optind],
		       qs_file_count(ct, QS_VIEW_HIGH), qs_file_count(ct, QS_VIEW_INT8));
	qs_close(ct);
	return rc;
}

static int cmd_info(int argc, char **argv)
{
	int json = 0, c;
	static const struct option lo[] = { { "json", no_argument, 0, 'j' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
	while ((c = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
		if (c == 'j') json = 1;
		else if (c == 'h') { usage(stdout); return 0; }
		else { usage(stderr); return 2; }
	}
	qs_container *ct = open_one("info", argc, argv);
	if (!ct)
		return 1;
	qs_error e = { 0 };
	if (json) {
		char *s = qs_info_json(ct, &e);
		if (!s) {
			qs_close(ct);
			return die("info", &e);
		}
		printf("%s\n", s);   /* JSON: control characters are escaped in it already */
		free(s);
		qs_close(ct);
		return 0;
	}
	qs_summary s;
	qs_container_summary(ct, &s);
	char h[65];
	say(stdout, "container   %s", argv[optind]);
	say(stdout, "source      %s, %llu tensors, %llu chunks", s.source_dtype, (unsigned long long)s.n_tensors,
	       (unsigned long long)s.n_chunks);
	say(stdout, "size        %llu bytes", (unsigned long long)s.container_bytes);
	say(stdout, "int8 codes  %llu of %llu weight chunks derived from the floats, %llu stored",
	    (unsigned long long)s.derived_chunks, (unsigned long long)s.quant_chunks,
	    (unsigned long long)(s.quant_chunks - s.derived_chunks));
	say(stdout, "views       high %llu bytes + int8 %llu bytes = %llu", (unsigned long long)s.high_bytes,
	       (unsigned long long)s.int8_bytes, (unsigned long long)(s.high_bytes + s.int8_bytes));
	say(stdout, "floor       %.0f bytes (sum of n*H0/8 over 16-bit float tensors + raw other tensors)", s.floor_bytes);
	say(stdout, "ratios      container/floor %.4f   container/(high+int8) %.4f   container/high %.4f",
	       s.floor_bytes > 0 ? (double)s.container_bytes / s.floor_bytes : 0.0,
	       (double)s.container_bytes / (double)(s.high_bytes + s.int8_bytes),
	       (double)s.container_bytes / (double)s.high_bytes);
	for (int v = 0; v < 2; v++) {
		say(stdout, "%s", "");
		say(stdout, "%s view files:", v ? "int8" : "high");
		for (size_t i = 0; i < qs_file_count(ct, (qs_view)v); i++) {
			qs_file_info fi;
			qs_file_get(ct, (qs_view)v, i, &fi);
			qs_hex(fi.sha256, 32, h);
			say(stdout, "  %14llu  %s  %s", (unsigned long long)fi.size, h, fi.path);
		}
	}
	say(stdout, "%s", "");
	say(stdout, "tensors: name  dtype  shape  bytes  stored  stored/floor  quantized (reason)");
	for (size_t i = 0; i < qs_tensor_count(ct); i++) {
		qs_tensor_info t;
		char shape[256] = "";
		qs_tensor_get(ct, i, &t);
		for (int d = 0; d < t.ndim; d++) {
			size_t l = strlen(shape);
			snprintf(shape + l, sizeof(shape) - l, "%s%llu", d ? "x" : "", (unsigned long long)t.shape[d]);
		}
		say(stdout, "  %s  %s  [%s]  %llu  %llu  %.4f  %s (%s)", t.name, t.dtype, shape,
		       (unsigned long long)t.nbytes, (unsigned long long)t.stored_bytes,
		       t.floor_bytes > 0 ? (double)t.stored_bytes / t.floor_bytes : 0.0, t.quantized ? "yes" : "no", t.reason);
	}
	qs_close(ct);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	qs_raise_fd_limit();
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		say(stdout, "qstore %s (container format %d, %s decoder)", QSTORE_VERSION_STRING, QSTORE_CONTAINER_FORMAT,
		    qs_decoder_kernels());
		return 0;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	argc--;
	argv++;
	if (!strcmp(cmd, "pack")) return cmd_pack(argc, argv);
	if (!strcmp(cmd, "unpack")) return cmd_unpack(argc, argv);
	if (!strcmp(cmd, "verify")) return cmd_verify(argc, argv);
	if (!strcmp(cmd, "info")) return cmd_info(argc, argv);
	say(stderr, "qstore: unknown command '%s'", cmd);
	usage(stderr);
	return 2;
}
