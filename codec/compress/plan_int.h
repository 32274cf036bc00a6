/*
 * plan_int.h - what the files of the planner share with each other (not
 * with the rest of compress/, which sees plan.h only).  The planner runs in
 * this order, one file per step:
 *
 *   plan_scan.c    the source files: walk, sort, open
 *   plan_check.c   safetensors headers, duplicate tensor names, shard indexes
 *   quant_policy.c which tensors are quantised, and their row scales
 *   plan.c         streams, tensors and the high view's extents; qs_plan_build
 *   plan_int8.c    the INT8 view: generated headers, config.json, shard index
 */
#ifndef QS_PLAN_INT_H
#define QS_PLAN_INT_H

#include <jansson.h>

#include "plan.h"
#include "../common/floatfmt.h"

/* plan_scan.c */
int qs_plan_scan(qs_plan *p, const char *src, qs_error *err);
int qs_plan_cmp_rel(const void *a, const void *b);          /* qs_srcfile by rel */

/* plan_check.c */
int qs_plan_check_sources(qs_plan *p, qs_error *err);
qs_srcfile *qs_plan_find_file(qs_plan *p, const char *rel);  /* NULL if absent */
int qs_plan_has_tensor(qs_srcfile *f, const char *name);
json_t *qs_plan_load_json(const qs_plan *p, const qs_srcfile *f, qs_error *err);
char *qs_plan_dir_of(const char *rel);                       /* "" or "dir/" (malloc) */

/* quant_policy.c */
int qs_quant_is_embedding(const char *name);
const char *qs_quant_why_not(qs_srcfile *f, const qs_st_tensor *t);   /* NULL: quantise */
int qs_quant_row_scales(const qs_srcfile *f, const qs_st_tensor *t, const qs_fmtinfo *fi,
			uint32_t *scales, int *finite, qs_error *err);

/* plan.c: the layout primitives plan_int8.c builds on */
qs_vfile *qs_plan_add_vfile(qs_plan *p, int view, const char *path, qs_error *err);
int qs_plan_add_extent(qs_plan *p, qs_vfile *f, int64_t stream, int face, uint64_t len, qs_error *err);
int64_t qs_plan_add_blob(qs_plan *p, const char *name, uint8_t *mem, size_t file, uint64_t off, uint64_t len,
			 int64_t hash_file, int zlevel, qs_error *err);

/* plan_int8.c: ts[i][j] / ss[i][j] are the tensor / scale streams of tensor
 * j of source file i, t0[i] the index of its first tensor */
int qs_plan_int8_view(qs_plan *p, int64_t *const *ts, int64_t *const *ss, const size_t *t0, qs_error *err);

#endif
