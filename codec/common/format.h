/*
 * format.h - byte layout of the container's fixed parts (FORMAT.md).
 *
 *   [header 64][chunk parts ...][manifest (zstd)][chunk table][extent table][trailer 128]
 *
 * Everything a reader needs is found from the trailer, so a truncated file
 * (no trailer, or a trailer whose recorded size disagrees) is refused before
 * any other byte is trusted.
 */
#ifndef QS_FORMAT_H
#define QS_FORMAT_H

#define QS_HEADER_SIZE 64
#define QS_TRAILER_SIZE 128
#define QS_FORMAT_VERSION 1
#define QS_CHUNK_REC 32
#define QS_EXTENT_REC 32
/* "\x89QSTORE\n": a high byte and a newline catch text-mode transfers */
#define QS_HEADER_MAGIC "\x89QSTORE\n"
#define QS_TRAILER_MAGIC "QSTTRAIL"
#define QS_MAX_MANIFEST (1ull << 30)

/* header: magic[8] | u32 version | u32 header_size | 40 zero bytes | u64 xxh3(bytes 0..55) */
/* trailer (offsets from the trailer start):
 *   0 magic[8]        8 u32 version       12 u32 trailer_size (128)
 *  16 u64 container_size
 *  24 u64 manifest_off   32 u64 manifest_len   40 u64 manifest_raw_len
 *  48 u64 chunks_off     56 u64 n_chunks
 *  64 u64 extents_off    72 u64 n_extents
 *  80 u64 xxh3 of bytes [manifest_off, trailer start)
 *  88 32 zero bytes     120 u64 xxh3 of trailer bytes 0..119 */

#endif
