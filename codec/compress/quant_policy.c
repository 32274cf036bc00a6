/* quant_policy.c - which tensors the INT8 view quantises (FORMAT.md section
 * 5), the reason recorded for every one it does not, and the per-row scales
 * of those it does. */
#include "plan_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define PREAD_BLOCK (4u << 20)

int qs_quant_is_embedding(const char *name)
{
	return strstr(name, "embed") || strstr(name, "wte.") || strstr(name, "wpe.")
		|| !strncmp(name, "wte", 3) || !strncmp(name, "wpe", 3);
}

/* Returns NULL if T is a quantisation candidate, else why not. */
const char *qs_quant_why_not(qs_srcfile *f, const qs_st_tensor *t)
{
	if (!qs_fmt_from_dtype(t->dtype))
		return t->dsize ? "not a float dtype" : "unknown dtype: stored losslessly";
	if (t->ndim != 2)
		return "not a 2-D weight";
	if (!qs_ends_with(t->name, ".weight"))
		return "not named *.weight";
	if (qs_quant_is_embedding(t->name))
		return "embedding";
	if (!t->shape[0] || !t->shape[1])
		return "empty";
	char *scale = NULL;
	int clash = asprintf(&scale, "%s_scale", t->name) < 0 || qs_plan_has_tensor(f, scale);
	free(scale);
	if (clash)
		return "a tensor named *.weight_scale already exists";
	if (!strcmp(t->name, "lm_head.weight") || qs_ends_with(t->name, ".lm_head.weight"))
		return "lm_head: kept in float (listed in quantization_config.ignore)";
	return NULL;
}

/* Pass 1 over a candidate: per-row absmax (as a magnitude pattern: for finite
 * floats the integer order is the numeric order) and finiteness. */
/* The largest magnitude (sign bit cleared) of n 16-bit floats, at least m:
 * eight independent maxima so that the compare chain does not serialise
 * the loop (1.0 -> 0.5 ns per weight on make bench's gen) */
static uint32_t max_mag16(const uint8_t *p, size_t n, uint32_t m)
{
	uint32_t acc[8] = { m, m, m, m, m, m, m, m };
	size_t j = 0;
	for (; j + 8 <= n; j += 8)
		for (unsigned k = 0; k < 8; k++) {
			uint32_t g = rd16(p + 2 * (j + k)) & 0x7fffu;
			acc[k] = g > acc[k] ? g : acc[k];
		}
	for (; j < n; j++) {
		uint32_t g = rd16(p + 2 * j) & 0x7fffu;
		acc[0] = g > acc[0] ? g : acc[0];
	}
	for (unsigned k = 1; k < 8; k++)
		acc[0] = acc[k] > acc[0] ? acc[k] : acc[0];
	return acc[0];
}

int qs_quant_row_scales(const qs_srcfile *f, const qs_st_tensor *t, const qs_fmtinfo *fi,
			uint32_t *scales, int *finite, qs_error *err)
{
	uint64_t rows = t->shape[0], cols = t->shape[1], row = 0, col = 0;
	uint64_t total = t->end - t->begin, at = 0;
	uint32_t rmax = 0, worst = 0;
	uint8_t *buf = malloc(PREAD_BLOCK);
	if (!buf)
		return qs_fail(err, ENOMEM, "out of memory");
	while (at < total) {
		size_t n = total - at < PREAD_BLOCK ? (size_t)(total - at) : PREAD_BLOCK;
		if (qs_pread_full(f->fd, buf, n, f->st.data_start + t->begin + at)) {
			free(buf);
			return qs_fail(err, EIO, "%s: read error in tensor '%s'", f->abs, t->name);
		}
		size_t ne = n / fi->esize, i = 0;
		while (i < ne) {
			size_t m = ne - i < cols - col ? ne - i : (size_t)(cols - col);
			if (fi->esize == 2) {
				rmax = max_mag16(buf + 2 * i, m, rmax);
			} else {
				for (size_t j = 0; j < m; j++) {
					uint32_t g = rd32(buf + 4 * (i + j)) & 0x7fffffffu;
					rmax = g > rmax ? g : rmax;
				}
			}
			i += m;
			col += m;
			if (col == cols) {
				worst = rmax > worst ? rmax : worst;
				scales[row++] = qs_scale_for(fi, qs_to_f32(fi, rmax));
				rmax = 0;
				col = 0;
			}
		}
		at += n;
	}
	free(buf);
	*finite = worst <= fi->magmax;
	return row == rows ? 0 : qs_fail(err, EIO, "%s: tensor '%s' changed while packing", f->abs, t->name);
}
