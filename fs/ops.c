/*
 * ops.c - the FUSE low-level operations: each one takes the daemon from the
 * request's userdata and maps the request onto the namespace (ns.h) or the
 * serving layer (serve/server.h).  Everything is read-only: every write
 * operation answers EROFS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "daemon.h"
#include "stats.h"

static qfs_daemon *D(fuse_req_t req) { return fuse_req_userdata(req); }

void qfs_rescan(qfs_daemon *d)
{
	qfs_changes ch;
	qfs_ns_rescan(d->ns, &ch);
	/* forget the dentries of what changed, so the next lookup sees the new
	 * version (its new inodes) */
	for (size_t i = 0; i < ch.n && atomic_load(&d->mounted); i++)
		fuse_lowlevel_notify_inval_entry(d->se, QFS_INO_ROOT, ch.names[i], strlen(ch.names[i]));
	qfs_changes_free(&ch);
}

static void qfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	qfs_attr a;
	memset(&e, 0, sizeof(e));
	int rc = qfs_ns_lookup(D(req)->ns, parent, name, &a);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	e.ino = a.st.st_ino;
	e.attr = a.st;
	e.attr_timeout = e.entry_timeout = a.ttl;
	fuse_reply_entry(req, &e);
}

static void qfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	qfs_ns_forget(D(req)->ns, ino, nlookup);
	fuse_reply_none(req);
}

static void qfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	for (size_t i = 0; i < count; i++)
		qfs_ns_forget(D(req)->ns, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void qfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	qfs_attr a;
	int rc = qfs_ns_getattr(D(req)->ns, ino, &a);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &a.st, a.ttl);
}

/* ---- directories --------------------------------------------------------- */

static void qfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino == QFS_INO_ROOT)
		qfs_rescan(D(req));   /* cheap when nothing changed; inotify covers the rest */
	int rc = qfs_ns_isdir(D(req)->ns, ino);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->cache_readdir = ino != QFS_INO_ROOT;
	fuse_reply_open(req, fi);
}

typedef struct dirbuf { fuse_req_t req; char *buf; size_t size, used; } dirbuf;

static int emit(void *ctx, const char *name, uint64_t ino, int is_dir, uint64_t next_off)
{
	dirbuf *b = ctx;
	struct stat st = { .st_ino = ino, .st_mode = is_dir ? S_IFDIR : S_IFREG };
	size_t need = fuse_add_direntry(b->req, b->buf + b->used, b->size - b->used, name, &st, (off_t)next_off);
	if (need > b->size - b->used)
		return 1;   /* full: the kernel asks again from next_off */
	b->used += need;
	return 0;
}

static void qfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	dirbuf b = { req, malloc(size), size, 0 };
	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = qfs_ns_readdir(D(req)->ns, ino, (uint64_t)off, emit, &b);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, b.buf, b.used);
	free(b.buf);
}

/* ---- files ---------------------------------------------------------------- */

static void qfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	qfs_daemon *d = D(req);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	qsv_version *v = NULL;
	int view = 0;
	size_t file = 0;
	int rc = qfs_ns_open(d->ns, ino, &v, &view, &file);
	qfs_handle *h = rc < 0 ? NULL : qfs_handle_new(&d->handles);
	if (!h) {
		if (rc == 0)
			qsv_version_unref(v);
		fuse_reply_err(req, rc < 0 ? -rc : ENOMEM);
		return;
	}
	if (ino == QFS_INO_STATS) {
		const struct fuse_ctx *cx = fuse_req_ctx(req);
		gid_t groups[64];
		int ng = fuse_req_getgroups(req, 64, groups);
		qfs_who who = { cx->uid, cx->gid, groups, ng < 0 ? 0 : ng > 64 ? 64 : ng };
		h->text = qfs_stats_text(d, &who, &h->text_len);
		fi->direct_io = 1;   /* its size is only known now */
	} else if (ino == QFS_INO_CEILING) {
		h->ceiling = 1;
	} else {
		qsv_file_open(&h->f, v, view, file);
		qsv_version_unref(v);   /* the file holds its own reference */
		h->has_file = 1;
		fi->keep_cache = 1;   /* immutable: a new version is a new inode */
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->noflush = 1;
	if (fuse_reply_open(req, fi))
		qfs_handle_put(&d->handles, h);   /* the open was interrupted: no release will come */
}

static void qfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	qfs_daemon *d = D(req);   /* req and fi are gone once replied to */
	qfs_handle *h = (qfs_handle *)(uintptr_t)fi->fh;
	fuse_reply_err(req, 0);
	qfs_handle_put(&d->handles, h);
}

static void reply_ceiling(fuse_req_t req, qfs_daemon *d, size_t size, off_t off)
{
	static const char zeros[1 << 20];   /* read-only: the same FUSE path, no decoding */
	uint64_t left = d->o.ceiling > (uint64_t)off ? d->o.ceiling - (uint64_t)off : 0;
	fuse_reply_buf(req, zeros, size < left ? (size < sizeof(zeros) ? size : sizeof(zeros)) : left);
}

static void read_reply(fuse_req_t req, qfs_daemon *d, qfs_handle *h, size_t size, off_t off)
{
	if (h->text) {
		size_t o = (size_t)off < h->text_len ? (size_t)off : h->text_len;
		fuse_reply_buf(req, h->text + o, size < h->text_len - o ? size : h->text_len - o);
		return;
	}
	if (h->ceiling) {
		reply_ceiling(req, d, size, off);
		return;
	}
	qsv_reply r;
	int rc = qsv_read(d->srv, &h->f, (uint64_t)off, size, &r);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* straight from the cached chunks: the kernel copies before we unpin */
	fuse_reply_iov(req, r.iov, (int)r.n);
	qsv_reply_release(d->srv, &r);
}

static void qfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	qfs_daemon *d = D(req);
	/* held while we reply: RELEASE may come the moment the kernel has it */
	qfs_handle *h = qfs_handle_hold((qfs_handle *)(uintptr_t)fi->fh);
	read_reply(req, d, h, size, off);
	qfs_handle_put(&d->handles, h);
}

static void qfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct statvfs sv;
	if (statvfs(D(req)->o.backing, &sv))
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
	/* max_readahead can only go down here: ready.c raises the mount's
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
