/*
 * freqtab.h - static frequency tables for rANS table symbols.
 *
 * Each chunk carries the table of its own symbols (INT8 codes, or the
 * sign+exponent of floats), normalised to 2^12.  Per chunk rather than per
 * tensor so that every chunk decodes on its own; the table costs 0.05% of a
 * 1 MiB chunk.  Serialised form (FORMAT.md "frequency tables"):
 *   varint first, varint count, then count varints: the frequency of symbols
 *   first .. first+count-1 (0 = absent).  The frequencies sum to exactly 4096
 *   (or count is 0: a table with no symbols).
 */
#ifndef QS_FREQTAB_H
#define QS_FREQTAB_H

#include <stddef.h>
#include <stdint.h>

#define FT_BITS 12
#define FT_M (1u << FT_BITS)
#define FT_MAX_SYMS 1024

typedef struct ft_enc {
	uint32_t nsym;
	uint32_t first, count;          /* range holding every present symbol */
	uint16_t freq[FT_MAX_SYMS];
	uint16_t start[FT_MAX_SYMS];
} ft_enc;

typedef struct ft_dec_entry { uint16_t sym, freq, bias, pad; } ft_dec_entry;  /* 8 bytes: one load */

/* Normalise counts[0..nsym) into t; deterministic. */
void ft_build(const uint32_t *counts, uint32_t nsym, ft_enc *t);
/* Serialise into out (needs at most 10 + 3*FT_MAX_SYMS bytes); returns bytes. */
size_t ft_write(const ft_enc *t, uint8_t *out);
#define FT_MAX_SERIAL (10 + 3 * FT_MAX_SYMS)
/* Parse a table for an alphabet of nsym symbols and fill the 4096-entry
 * decode table.  Returns bytes consumed, or 0 if the table is malformed.
 * *empty is set when the table has no symbols. */
size_t ft_read(const uint8_t *p, size_t len, uint32_t nsym, ft_dec_entry *tab, int *empty);

size_t qs_varint_put(uint8_t *out, uint64_t v);
/* returns bytes consumed or 0 on a malformed / truncated varint */
size_t qs_varint_get(const uint8_t *p, size_t len, uint64_t *v);

#endif
