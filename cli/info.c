/*
 * info.c - `qstore info`: the summary, then the files of both views and the
 * tensors as aligned tables.  Names come from the container: every line goes
 * through say(), which escapes control characters.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "out.h"

/* a ratio, or why there is none */
static const char *ratio(double num, double den, char out[32])
{
	if (den > 0)
		snprintf(out, 32, "%.4f", num / den);
	else
		snprintf(out, 32, "n/a (nothing to entropy-code)");
	return out;
}

/* "N of M tensors quantised" and, for the others, how many for each reason */
static void quantised_line(qs_container *ct)
{
	size_t n = qs_tensor_count(ct), q = 0, nr = 0;
	const char **reason = calloc(n + 1, sizeof(*reason));
	size_t *count = calloc(n + 1, sizeof(*count));
	for (size_t i = 0; i < n && reason && count; i++) {
		qs_tensor_info t;
		qs_tensor_get(ct, i, &t);
		if (t.quantized) {
			q++;
			continue;
		}
		size_t k = 0;
		while (k < nr && strcmp(reason[k], t.reason))
			k++;
		if (k == nr)
			reason[nr++] = t.reason;
		count[k]++;
	}
	say(stdout, "quantised   %zu of %zu tensors (INT8 per output channel)%s", q, n, nr ? "; the others:" : "");
	for (size_t k = 0; k < nr; k++)
		say(stdout, "            %6zu  %s", count[k], reason[k]);
	free(reason);
	free(count);
}

static void summary(qs_container *ct, const char *path)
{
	qs_summary s;
	char a[16], b[16], c[16], r1[32], r2[32], r3[32];
	qs_container_summary(ct, &s);
	say(stdout, "container   %s", path);
	say(stdout, "size        %s (%llu bytes), %llu chunks", human_bytes(s.container_bytes, a),
	    (unsigned long long)s.container_bytes, (unsigned long long)s.n_chunks);
	say(stdout, "source      %s, %llu tensors", s.source_dtype, (unsigned long long)s.n_tensors);
	say(stdout, "views       high %s (%zu files) + int8 %s (%zu files)", human_bytes(s.high_bytes, a),
	    qs_file_count(ct, QS_VIEW_HIGH), human_bytes(s.int8_bytes, b), qs_file_count(ct, QS_VIEW_INT8));
	say(stdout, "floor       %s (sum of n*H0/8 over 16-bit float tensors + raw size of the others)",
	    human_bytes((uint64_t)s.floor_bytes, c));
	say(stdout, "ratios      container/floor %s, container/(high+int8) %s, container/high %s",
	    ratio((double)s.container_bytes, s.floor_bytes, r1),
	    ratio((double)s.container_bytes, (double)(s.high_bytes + s.int8_bytes), r2),
	    ratio((double)s.container_bytes, (double)s.high_bytes, r3));
	quantised_line(ct);
	say(stdout, "int8 codes  %llu of %llu weight chunks derived from the floats, %llu stored (%llu of them as tuples)",
	    (unsigned long long)s.derived_chunks, (unsigned long long)s.quant_chunks,
	    (unsigned long long)(s.quant_chunks - s.derived_chunks), (unsigned long long)s.tuple_chunks);
	char low[256] = "";
	for (int v = QS_VIEW_INT2; v < QS_N_VIEWS; v++) {
		size_t l = strlen(low);
		snprintf(low + l, sizeof(low) - l, "%s%s %s", l ? ", " : "", qs_view_name((qs_view)v),
			 human_bytes(s.low_bytes[v], a));
	}
	say(stdout, "lower views %s (generated from the INT8 codes when mounted or unpacked; not stored)", low);
}

static void files(qs_container *ct)
{
	char h[65], sz[16];
	for (int v = 0; v < 2; v++) {
		say(stdout, "%s", "");
		say(stdout, "%s view files:", v ? "int8" : "high");
		say(stdout, "  %10s  %-64s  %s", "size", "SHA-256", "path");
		for (size_t i = 0; i < qs_file_count(ct, (qs_view)v); i++) {
			qs_file_info fi;
			qs_file_get(ct, (qs_view)v, i, &fi);
			qs_hex(fi.sha256, 32, h);
			say(stdout, "  %10s  %s  %s", human_bytes(fi.size, sz), fi.has_sha256 ? h : "(computed when read)",
			    fi.path);
		}
	}
}

static void shape_of(const qs_tensor_info *t, char *out, size_t cap)
{
	out[0] = 0;
	for (int d = 0; d < t->ndim; d++) {
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%llu", d ? "x" : "", (unsigned long long)t->shape[d]);
	}
}

static void tensors(qs_container *ct)
{
	size_t n = qs_tensor_count(ct);
	int wn = 6, ws = 5;   /* "tensor", "shape" */
	char shape[256], a[16], b[16], r[32];
	for (size_t i = 0; i < n; i++) {
		qs_tensor_info t;
		qs_tensor_get(ct, i, &t);
		shape_of(&t, shape, sizeof(shape));
		int l = (int)strlen(t.name), ls = (int)strlen(shape) + 2;
		wn = l > wn ? (l < 64 ? l : 64) : wn;
		ws = ls > ws ? ls : ws;
	}
	say(stdout, "%s", "");
	say(stdout, "tensors:");
	say(stdout, "  %-*s  %-5s  %-*s  %10s  %10s  %12s  %-9s  %s", wn, "tensor", "dtype", ws, "shape", "size", "stored",
	    "stored/floor", "quantised", "why");
	for (size_t i = 0; i < n; i++) {
		qs_tensor_info t;
		char sh[260];
		qs_tensor_get(ct, i, &t);
		shape_of(&t, shape, sizeof(shape));
		snprintf(sh, sizeof(sh), "[%s]", shape);
		say(stdout, "  %-*s  %-5s  %-*s  %10s  %10s  %12s  %-9s  %s", wn, t.name, t.dtype, ws, sh,
		    human_bytes(t.nbytes, a), human_bytes(t.stored_bytes, b),
		    t.floor_bytes > 0 ? ratio((double)t.stored_bytes, t.floor_bytes, r) : "n/a", t.quantized ? "yes" : "no",
		    t.reason);
	}
}

int qstore_info(qs_container *ct, const char *path)
{
	summary(ct, path);
	files(ct);
	tensors(ct);
	return 0;
}
