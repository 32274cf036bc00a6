/*
 * format.h - byte layout of the container's fixed parts (FORMAT.md).
 *
 *   [header 64][chunk parts ...][manifest (zstd)][chunk table][extent table][trailer 128]
 *
 * Everything a reader needs is found from the trailer, so a truncated file
 * (no trailer, or a trailer whose recorded size disagrees) is refused before
 * any other byte is trusted.  The field offsets below are the only place the
 * layout is written down in code: the writer and the reader both use them.
 */
#ifndef QS_FORMAT_H
#define QS_FORMAT_H

#include "qstore.h"

#define QS_HEADER_SIZE 64
#define QS_TRAILER_SIZE 128
#define QS_FORMAT_VERSION QSTORE_CONTAINER_FORMAT
#define QS_CHUNK_REC 32
#define QS_EXTENT_REC 32
/* "\x89QSTORE\n": a high byte and a newline catch text-mode transfers */
#define QS_HEADER_MAGIC "\x89QSTORE\n"
#define QS_TRAILER_MAGIC "QSTTRAIL"
#define QS_MAX_MANIFEST (1ull << 30)

/* header: magic[8] | u32 version | u32 header_size | 40 zero bytes | u64 xxh3(bytes 0..55) */
enum {
	QS_HD_MAGIC = 0, QS_HD_VERSION = 8, QS_HD_SIZE = 12, QS_HD_HASH = 56,
};

/* trailer, offsets from the trailer start; bytes 88..119 are zero */
enum {
	QS_TR_MAGIC = 0,           /* magic[8] */
	QS_TR_VERSION = 8,         /* u32 */
	QS_TR_SIZE = 12,           /* u32, QS_TRAILER_SIZE */
	QS_TR_CONTAINER_SIZE = 16, /* u64, the whole file */
	QS_TR_MANIFEST_OFF = 24, QS_TR_MANIFEST_LEN = 32, QS_TR_MANIFEST_RAW = 40,
	QS_TR_CHUNKS_OFF = 48, QS_TR_N_CHUNKS = 56,
	QS_TR_EXTENTS_OFF = 64, QS_TR_N_EXTENTS = 72,
	QS_TR_INDEX_HASH = 80,     /* u64 xxh3 of [manifest_off, trailer start) */
	QS_TR_HASH = 120,          /* u64 xxh3 of trailer bytes 0..119 */
};

/* chunk record (QS_CHUNK_REC bytes) */
enum { QS_CR_OFF = 0, QS_CR_LEN_A = 8, QS_CR_LEN_B = 12, QS_CR_HASH_A = 16, QS_CR_HASH_B = 24 };
/* extent record (QS_EXTENT_REC bytes) */
enum { QS_ER_FILE_OFF = 0, QS_ER_LEN = 8, QS_ER_STREAM = 16, QS_ER_FACE = 20, QS_ER_STREAM_OFF = 24 };

#endif
