/* writer.c - the container file, chunk by chunk; see writer.h. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "../common/format.h"
#include "writer.h"

static void finish_hash(writer *w, qs_plan *p)
{
	if (w->sha_file >= 0)
		qs_sha256_final(w->sha, p->ix.files[QS_VIEW_HIGH][w->sha_file].sha256);
	w->sha_file = -1;
}

static void finish_floor(writer *w, qs_plan *p)
{
	if (w->hist_tensor < 0)
		return;
	qs_tensor *t = &p->ix.tensors[w->hist_tensor];
	uint64_t n = t->nbytes / 2;
	double bits = 0;
	for (uint32_t i = 0; i < w->n_touched; i++) {
		uint64_t c = w->hist[w->touched[i]];
		bits += (double)c * log2((double)n / (double)c);
		w->hist[w->touched[i]] = 0;
	}
	t->floor_bytes = bits / 8;
	w->n_touched = 0;
	w->hist_tensor = -1;
}

int qs_writer_chunk(writer *w, qs_plan *p, const qs_encoded *j, qs_error *err)
{
	const qs_stream_src *src = &p->src[j->stream];
	qs_chunk *c = &p->ix.chunks[p->ix.streams[j->stream].first_chunk + j->k];
	*c = (qs_chunk){ w->off, (uint32_t)j->la, (uint32_t)j->lb, j->hash_a, j->hash_b };
	int e = qs_write_full(w->fd, j->pa, j->la);
	if (e || (e = qs_write_full(w->fd, j->pb, j->lb)))
		return qs_fail(err, -e, "%s: write error: %s", w->out, strerror(-e));
	w->off += j->la + j->lb;
	/* files are laid out one after another; scale streams (no file) do not
	 * interrupt the file they sit in */
	if (src->hash_file >= 0 && src->hash_file != w->sha_file) {
		finish_hash(w, p);
		w->sha_file = src->hash_file;
	}
	if (src->hash_file >= 0)
		qs_sha256_update(w->sha, j->in, j->in_len);
	if (src->tensor != w->hist_tensor)
		finish_floor(w, p);
	const qs_stream *st = &p->ix.streams[j->stream];
	if (src->tensor >= 0 && st->fmt && st->esize == 2) {
		w->hist_tensor = src->tensor;
		for (size_t i = 0; i < j->ne; i++) {
			uint16_t v = rd16(j->in + 2 * i);
			if (!w->hist[v]++)
				w->touched[w->n_touched++] = v;
		}
	}
	if (src->tensor >= 0)
		p->ix.tensors[src->tensor].stored_bytes += j->la + j->lb;
	if (src->kind == SRC_FILE)
		w->done_bytes += j->in_len;
	return 0;
}

void qs_writer_flush(writer *w, qs_plan *p)
{
	finish_hash(w, p);
	finish_floor(w, p);
}

int qs_writer_index(writer *w, qs_index *ix, qs_error *err)
{
	size_t mlen;
	char *man = qs_manifest_dump(ix, &mlen);
	size_t cap = ZSTD_compressBound(mlen);
	uint64_t tabs = ix->n_chunks * QS_CHUNK_REC + ix->n_extents * QS_EXTENT_REC;
	uint8_t *buf = man ? malloc(cap + tabs + QS_TRAILER_SIZE) : NULL;
	if (!buf) {
		free(man);
		return qs_fail(err, ENOMEM, "out of memory for the index");
	}
	size_t zl = ZSTD_compress(buf, cap, man, mlen, 9);
	free(man);
	if (ZSTD_isError(zl)) {
		free(buf);
		return qs_fail(err, EIO, "zstd: %s", ZSTD_getErrorName(zl));
	}
	uint8_t *t = buf + zl;
	for (size_t i = 0; i < ix->n_chunks; i++, t += QS_CHUNK_REC) {
		const qs_chunk *c = &ix->chunks[i];
		wr64(t, c->off); wr32(t + 8, c->len_a); wr32(t + 12, c->len_b);
		wr64(t + 16, c->hash_a); wr64(t + 24, c->hash_b);
	}
	for (size_t i = 0; i < ix->n_extents; i++, t += QS_EXTENT_REC) {
		const qs_extent *e = &ix->extents[i];
		wr64(t, e->file_off); wr64(t + 8, e->len); wr32(t + 16, e->stream); wr32(t + 20, e->face);
		wr64(t + 24, e->stream_off);
	}
	uint64_t moff = w->off, ilen = zl + tabs;
	memset(t, 0, QS_TRAILER_SIZE);
	memcpy(t, QS_TRAILER_MAGIC, 8);
	wr32(t + 8, QS_FORMAT_VERSION);
	wr32(t + 12, QS_TRAILER_SIZE);
	wr64(t + 16, moff + ilen + QS_TRAILER_SIZE);
	wr64(t + 24, moff); wr64(t + 32, zl); wr64(t + 40, mlen);
	wr64(t + 48, moff + zl); wr64(t + 56, ix->n_chunks);
	wr64(t + 64, moff + zl + ix->n_chunks * QS_CHUNK_REC); wr64(t + 72, ix->n_extents);
	wr64(t + 80, XXH3_64bits(buf, ilen));
	wr64(t + 120, XXH3_64bits(t, 120));
	int e = qs_write_full(w->fd, buf, ilen + QS_TRAILER_SIZE);
	int rc = e ? qs_fail(err, -e, "%s: write error: %s", w->out, strerror(-e)) : 0;
	w->off += ilen + QS_TRAILER_SIZE;
	ix->container_bytes = w->off;
	free(buf);
	return rc;
}

/* Remove DIR/.BASE.tmp.PID.* whose PID no longer runs (an interrupted pack). */
static void remove_stale(const char *dir, const char *base)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t bl = strlen(base);
	while (d && (de = readdir(d))) {
		const char *n = de->d_name;
		char *end, *path = NULL;
		if (n[0] != '.' || strncmp(n + 1, base, bl) || strncmp(n + 1 + bl, ".tmp.", 5))
			continue;
		long pid = strtol(n + 1 + bl + 5, &end, 10);
		if (pid <= 0 || *end != '.' || !kill((pid_t)pid, 0) || errno != ESRCH)
			continue;   /* not ours, or its packer still runs (or is another user's) */
		if (asprintf(&path, "%s/%s", dir, n) >= 0)
			unlink(path);
		free(path);
	}
	if (d)
		closedir(d);
}

/* A new temporary sibling of OUT, created like any new file (0666 & ~umask). */
static int create_tmp(const char *dir, const char *base, char **tmp)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t seed = (uint64_t)(qs_now() * 1e9) ^ (uint64_t)getpid() << 32;
	for (int attempt = 0; attempt < 100; attempt++, seed = XXH3_64bits(&seed, sizeof(seed))) {
		char tag[9];
		for (int i = 0; i < 8; i++)
			tag[i] = hex[(seed >> (4 * i)) & 15];
		tag[8] = 0;
		if (asprintf(tmp, "%s/.%s.tmp.%ld.%s", dir, base, (long)getpid(), tag) < 0)
			return -ENOMEM;
		int fd = open(*tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);   /* read back: hash_int8_view */
		if (fd >= 0)
			return fd;
		int e = errno;
		free(*tmp);
		*tmp = NULL;
		if (e != EEXIST)
			return -e;
	}
	return -EEXIST;
}

int qs_writer_start(writer *w, const char *out, char **tmp, qs_error *err)
{
	char *d = strdup(out), *b = strdup(out);
	int rc = -1;
	w->out = out;
	if (d && b) {
		const char *dir = dirname(d), *base = basename(b);
		remove_stale(dir, base);
		w->fd = create_tmp(dir, base, tmp);
		if (w->fd < 0) {
			qs_fail(err, -w->fd, "%s: cannot create the output: %s", out, strerror(-w->fd));
			w->fd = -1;
		} else {
			uint8_t h[QS_HEADER_SIZE] = { 0 };
			memcpy(h, QS_HEADER_MAGIC, 8);
			wr32(h + 8, QS_FORMAT_VERSION);
			wr32(h + 12, QS_HEADER_SIZE);
			wr64(h + 56, XXH3_64bits(h, 56));
			int e = qs_write_full(w->fd, h, sizeof(h));
			rc = e ? qs_fail(err, -e, "%s: write error: %s", out, strerror(-e)) : 0;
			w->off = QS_HEADER_SIZE;
		}
	} else {
		qs_fail(err, ENOMEM, "out of memory");
	}
	free(d);
	free(b);
	return rc;
}

/* Does the file at PATH hold exactly the SIZE bytes of FD? */
static int same_bytes(int fd, uint64_t size, const char *path)
{
	int fo = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int same = fo >= 0 && !fstat(fo, &st) && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
	enum { BLK = 1 << 20 };
	uint8_t *a = same ? malloc(BLK) : NULL, *b = same ? malloc(BLK) : NULL;
	same = same && a && b;
	for (uint64_t off = 0; same && off < size; off += BLK) {
		size_t n = size - off < BLK ? (size_t)(size - off) : BLK;
		same = !qs_pread_full(fd, a, n, off) && !qs_pread_full(fo, b, n, off) && !memcmp(a, b, n);
	}
	free(a);
	free(b);
	if (fo >= 0)
		close(fo);
	return same;
}

int qs_writer_commit(writer *w, const char *tmp, const char *out, int *unchanged, qs_error *err)
{
	/* an identical container stays as it was (inode, mtime): rsync -a and
	 * the mount's page cache keep it */
	*unchanged = same_bytes(w->fd, w->off, out);
	if (*unchanged)
		return unlink(tmp) ? qs_fail(err, errno, "%s: %s", tmp, strerror(errno)) : 0;
	if (fsync(w->fd))
		return qs_fail(err, errno, "%s: %s", out, strerror(errno));
	if (rename(tmp, out))
		return qs_fail(err, errno, "%s: cannot rename into place: %s", out, strerror(errno));
	char *d = strdup(out);
	int dfd = d ? open(dirname(d), O_RDONLY | O_DIRECTORY) : -1;
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(d);
	return 0;
}

