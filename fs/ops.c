/*
 * ops.c - the FUSE low-level operations: a thin mapping of requests onto
 * the namespace (ns.c), the chunk cache (cache.c) and the codec (qs_map,
 * qs_decode_span through fetch.c).  Everything is read-only: every write
 * operation answers EROFS.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "daemon.h"
#include "fetch.h"
#include "log.h"
#include "ns.h"

#define MAX_PIECES 64
/* Contents are immutable per container version (a new version gets new
 * inodes), so the kernel may cache names and attributes for long; the
 * root's entries change when containers come and go (we also notify). */
#define TTL_ROOT 1.0
#define TTL_MODEL 3600.0

static double ttl_for(const qfs_node *n) { return n->model ? TTL_MODEL : TTL_ROOT; }

static void qfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	pthread_rwlock_rdlock(&qfs_ns_lock);
	qfs_node *dir = qfs_ns_node(parent), *n = dir && dir->is_dir ? qfs_ns_child(dir, name) : NULL;
	if (n) {
		atomic_fetch_add(&n->nlookup, 1);
		e.ino = n->ino;
		e.attr_timeout = e.entry_timeout = parent == QFS_INO_ROOT ? TTL_ROOT : ttl_for(n);
		qfs_ns_fill_attr(n, &e.attr);
	}
	pthread_rwlock_unlock(&qfs_ns_lock);
	if (n)
		fuse_reply_entry(req, &e);
	else
		fuse_reply_err(req, ENOENT);
}

static void qfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	qfs_ns_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void qfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		qfs_ns_forget(f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void qfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct stat st;
	pthread_rwlock_rdlock(&qfs_ns_lock);
	qfs_node *n = qfs_ns_node(ino);
	if (n)
		qfs_ns_fill_attr(n, &st);
	double ttl = n ? ttl_for(n) : 0;
	pthread_rwlock_unlock(&qfs_ns_lock);
	if (n)
		fuse_reply_attr(req, &st, ttl);
	else
		fuse_reply_err(req, ENOENT);
}

/* ---- directories --------------------------------------------------------- */

static void qfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == QFS_INO_ROOT)
		qfs_ns_rescan();   /* cheap when nothing changed; inotify covers the rest */
	pthread_rwlock_rdlock(&qfs_ns_lock);
	qfs_node *n = qfs_ns_node(ino);
	int ok = n && n->is_dir;
	pthread_rwlock_unlock(&qfs_ns_lock);
	if (!ok) {
		fuse_reply_err(req, n ? ENOTDIR : ENOENT);
		return;
	}
	fi->cache_readdir = ino != QFS_INO_ROOT;
	fuse_reply_open(req, fi);
}

static void qfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	char *buf = malloc(size);
	size_t used = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_rwlock_rdlock(&qfs_ns_lock);
	qfs_node *d = qfs_ns_node(ino);
	if (!d || !d->is_dir) {
		pthread_rwlock_unlock(&qfs_ns_lock);
		free(buf);
		fuse_reply_err(req, ENOENT);
		return;
	}
	/* offsets: 0 ".", 1 "..", 2 + i the i-th child */
	for (size_t i = (size_t)off; i < d->n_kids + 2; i++) {
		struct stat st = { 0 };
		const char *name;
		if (i < 2) {
			name = i ? ".." : ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else {
			qfs_node *k = qfs_ns_node(d->kids[i - 2]);
			if (!k)
				continue;
			name = k->name;
			st.st_ino = k->ino;
			st.st_mode = k->is_dir ? S_IFDIR : S_IFREG;
		}
		size_t need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	pthread_rwlock_unlock(&qfs_ns_lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* ---- files ---------------------------------------------------------------- */

static char *stats_json(size_t *len)
{
	qfs_state *d = qfs_daemon();
	qfs_cache_stats c;
	qfs_cache_get_stats(d->cache, &c);
	json_t *j = json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:f}, s:{s:I, s:I}, s:I, s:I, s:I, s:I, s:o}",
		"cache", "size", (json_int_t)c.capacity, "used", (json_int_t)c.used, "entries", (json_int_t)c.entries,
		"hits", (json_int_t)c.hits, "misses", (json_int_t)c.misses, "evictions", (json_int_t)c.evictions,
		"waits", (json_int_t)c.waits,
		"decoded", "bytes", (json_int_t)atomic_load(&d->n.decoded_bytes),
		"seconds", (double)atomic_load(&d->n.decode_ns) / 1e9,
		"prefetch", "issued", (json_int_t)c.prefetch_issued, "used", (json_int_t)c.prefetch_used,
		"errors", (json_int_t)atomic_load(&d->n.errors), "reads", (json_int_t)atomic_load(&d->n.reads),
		"read_bytes", (json_int_t)atomic_load(&d->n.read_bytes),
		"backing_bytes", (json_int_t)atomic_load(&d->n.backing_bytes), "models", qfs_ns_models_json());
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	*len = s ? strlen(s) : 0;
	return s;
}

static pthread_mutex_t handles_mu = PTHREAD_MUTEX_INITIALIZER;
static qfs_handle *handles;

static void handle_free(qfs_handle *h)
{
	pthread_mutex_lock(&handles_mu);
	if (h->prev)
		h->prev->next = h->next;
	else
		handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&handles_mu);
	if (h->m) {
		pthread_mutex_lock(&h->m->mu);
		h->m->open_handles--;
		pthread_mutex_unlock(&h->m->mu);
		qfs_model_unref(h->m);
	}
	free(h->text);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

void qfs_release_all(void)
{
	while (handles)
		handle_free(handles);
}

static void qfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	qfs_handle *h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_init(&h->mu, NULL);
	if (ino == QFS_INO_STATS) {
		h->text = stats_json(&h->text_len);
		fi->direct_io = 1;   /* its size is only known now */
	} else if (ino == QFS_INO_CEILING) {
		h->ceiling = 1;
	} else {
		pthread_rwlock_rdlock(&qfs_ns_lock);
		qfs_node *n = qfs_ns_node(ino);
		int err = !n ? ENOENT : n->is_dir ? EISDIR : 0;
		if (!err) {
			h->m = n->model;
			h->view = n->view;
			h->file = (size_t)n->file;
			qfs_model_ref(h->m);
			pthread_mutex_lock(&h->m->mu);
			h->m->open_handles++;
			pthread_mutex_unlock(&h->m->mu);
		}
		pthread_rwlock_unlock(&qfs_ns_lock);
		if (err) {
			free(h);
			fuse_reply_err(req, err);
			return;
		}
		fi->keep_cache = 1;   /* immutable: a new version is a new inode */
	}
	pthread_mutex_lock(&handles_mu);
	h->next = handles;
	if (handles)
		handles->prev = h;
	handles = h;
	pthread_mutex_unlock(&handles_mu);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		handle_free(h);   /* the open was interrupted: no release will come */
}

static void qfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((qfs_handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* A read touching more chunks than one iovec batch: copy into a buffer,
 * batch by batch (a short reply would read as end of file). */
static void read_many(fuse_req_t req, qfs_handle *h, uint64_t off, size_t size)
{
	qfs_state *d = qfs_daemon();
	uint8_t *buf = malloc(size);
	qs_piece p[MAX_PIECES];
	qfs_entry *e[MAX_PIECES];
	size_t done = 0;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	while (done < size) {
		size_t n = qs_map(h->m->c, (qs_view)h->view, h->file, off + done, size - done, p, MAX_PIECES);
		if (!n)
			break;
		int rc = qfs_fetch(h->m, h->view, h->file, p, n, e);
		if (rc) {
			free(buf);
			fuse_reply_err(req, -rc);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			memcpy(buf + done, qfs_entry_data(e[i]) + p[i].chunk_off, p[i].len);
			done += p[i].len;
			qfs_cache_put(d->cache, e[i]);
		}
	}
	/* prefetch before replying: once replied, a release may free h */
	qfs_after_read(h, off, done);
	atomic_fetch_add(&d->n.read_bytes, done);
	fuse_reply_buf(req, (char *)buf, done);
	free(buf);
}

static void qfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	qfs_handle *h = (qfs_handle *)(uintptr_t)fi->fh;
	qfs_state *d = qfs_daemon();
	atomic_fetch_add(&d->n.reads, 1);
	if (h->text) {
		size_t o = (size_t)off < h->text_len ? (size_t)off : h->text_len;
		fuse_reply_buf(req, h->text + o, size < h->text_len - o ? size : h->text_len - o);
		return;
	}
	if (h->ceiling) {   /* zeros from memory: the same FUSE path, no decoding */
		static const char zeros[1 << 20];
		uint64_t left = d->o.ceiling > (uint64_t)off ? d->o.ceiling - (uint64_t)off : 0;
		fuse_reply_buf(req, zeros, size < left ? (size < sizeof(zeros) ? size : sizeof(zeros)) : left);
		return;
	}
	qs_piece p[MAX_PIECES];
	qfs_entry *e[MAX_PIECES];
	struct iovec iov[MAX_PIECES];
	size_t n = qs_map(h->m->c, (qs_view)h->view, h->file, (uint64_t)off, size, p, MAX_PIECES), total = 0;
	for (size_t i = 0; i < n; i++)
		total += p[i].len;
	if (n == MAX_PIECES && total < size) {
		read_many(req, h, (uint64_t)off, size);   /* a range of many tiny tensors */
		return;
	}
	int rc = n ? qfs_fetch(h->m, h->view, h->file, p, n, e) : 0;
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		iov[i].iov_base = qfs_entry_data(e[i]) + p[i].chunk_off;
		iov[i].iov_len = p[i].len;
	}
	/* prefetch before replying: once replied, a release may free h */
	qfs_after_read(h, (uint64_t)off, total);
	atomic_fetch_add(&d->n.read_bytes, total);
	/* straight from the cached chunks: the kernel copies before we unpin */
	fuse_reply_iov(req, iov, (int)n);
	for (size_t i = 0; i < n; i++)
		qfs_cache_put(d->cache, e[i]);
}

static void qfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	if (statvfs(qfs_daemon()->o.backing, &sv))
		memset(&sv, 0, sizeof(sv));
	sv.f_flag |= ST_RDONLY;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ---- read-only -------------------------------------------------------------- */

static void erofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
static void qfs_setattr(fuse_req_t req, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *f)
{ (void)i; (void)a; (void)s; (void)f; erofs(req); }
static void qfs_mknod(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, dev_t r)
{ (void)p; (void)n; (void)m; (void)r; erofs(req); }
static void qfs_mkdir(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m) { (void)p; (void)n; (void)m; erofs(req); }
static void qfs_unlink(fuse_req_t req, fuse_ino_t p, const char *n) { (void)p; (void)n; erofs(req); }
static void qfs_symlink(fuse_req_t req, const char *l, fuse_ino_t p, const char *n) { (void)l; (void)p; (void)n; erofs(req); }
static void qfs_rename(fuse_req_t req, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f)
{ (void)p; (void)n; (void)np; (void)nn; (void)f; erofs(req); }
static void qfs_link(fuse_req_t req, fuse_ino_t i, fuse_ino_t p, const char *n) { (void)i; (void)p; (void)n; erofs(req); }
static void qfs_write(fuse_req_t req, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *f)
{ (void)i; (void)b; (void)s; (void)o; (void)f; erofs(req); }
static void qfs_create(fuse_req_t req, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *f)
{ (void)p; (void)n; (void)m; (void)f; erofs(req); }
static void qfs_setxattr(fuse_req_t req, fuse_ino_t i, const char *n, const char *v, size_t s, int f)
{ (void)i; (void)n; (void)v; (void)s; (void)f; erofs(req); }
static void qfs_removexattr(fuse_req_t req, fuse_ino_t i, const char *n) { (void)i; (void)n; erofs(req); }
static void qfs_fallocate(fuse_req_t req, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *f)
{ (void)i; (void)m; (void)o; (void)l; (void)f; erofs(req); }

static void qfs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* 1 MiB requests and many in flight: FUSE's per-request cost dominates
	 * at 128 KiB (BRIEF.md: 0.35-1.5 GB/s with defaults, 2.4 GB/s tuned) */
	conn->max_write = 1u << 20;
	conn->max_read = 1u << 20;
	/* max_readahead can only go down here: main.c raises the mount's
	 * read_ahead_kb once it answers */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

const struct fuse_lowlevel_ops qfs_ops = {
	.init = qfs_init,
	.lookup = qfs_lookup,
	.forget = qfs_forget,
	.forget_multi = qfs_forget_multi,
	.getattr = qfs_getattr,
	.opendir = qfs_opendir,
	.readdir = qfs_readdir,
	.open = qfs_open,
	.release = qfs_release,
	.read = qfs_read,
	.statfs = qfs_statfs,
	.setattr = qfs_setattr,
	.mknod = qfs_mknod,
	.mkdir = qfs_mkdir,
	.unlink = qfs_unlink,
	.rmdir = qfs_unlink,
	.symlink = qfs_symlink,
	.rename = qfs_rename,
	.link = qfs_link,
	.write = qfs_write,
	.create = qfs_create,
	.setxattr = qfs_setxattr,
	.removexattr = qfs_removexattr,
	.fallocate = qfs_fallocate,
};
