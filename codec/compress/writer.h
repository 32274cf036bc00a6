/*
 * writer.h - writing a container: the header, chunk parts in order (feeding
 * the SHA-256 of each high view file and the entropy floor of each 16-bit
 * tensor on the way), the index and trailer, and the temporary file that is
 * renamed into place only when complete.
 */
#ifndef QS_WRITER_H
#define QS_WRITER_H

#include "../common/sha256.h"
#include "plan.h"

typedef struct writer {
	int fd;
	const char *out;         /* the container being written, for messages */
	uint64_t off;
	qs_sha256 *sha;
	int64_t sha_file;        /* high view file being hashed, or -1 */
	/* 16-bit histogram of the tensor in progress, and the bins it touched:
	 * finishing a tensor costs O(its size), not O(65536), so 100,000 small
	 * tensors stay cheap */
	uint64_t *hist;
	uint16_t *touched;
	uint32_t n_touched;
	int64_t hist_tensor;
	uint64_t done_bytes;
} writer;

/* One encoded chunk, as the pipeline hands it to the writer. */
typedef struct qs_encoded {
	uint64_t stream, k;
	size_t ne;
	const uint8_t *in, *pa, *pb;
	size_t in_len, la, lb;
	uint64_t hash_a, hash_b;
} qs_encoded;


/* Create OUT's temporary sibling (*tmp: .NAME.tmp.PID.N, mode 0666 less
 * the umask, as any new file) and write the header.  Temporaries that an
 * interrupted pack on this host left behind (their PID is gone) are removed. */
int qs_writer_start(writer *w, const char *out, char **tmp, qs_error *err);
/* Append one chunk (they come in container order). */
int qs_writer_chunk(writer *w, qs_plan *p, const qs_encoded *j, qs_error *err);
/* After the last chunk: close the open file hash and floor histogram. */
void qs_writer_flush(writer *w, qs_plan *p);
/* Manifest, tables, trailer. */
int qs_writer_index(writer *w, qs_index *ix, qs_error *err);
/* fsync, rename TMP to OUT, fsync the directory; or, when OUT already holds
 * these very bytes, remove TMP and leave OUT alone (*unchanged = 1). */
int qs_writer_commit(writer *w, const char *tmp, const char *out, int *unchanged, qs_error *err);

#endif
