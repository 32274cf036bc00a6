/* ns.c - building and swapping the namespace; see ns.h. */
#include "ns.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define NBUCKETS (1 << 14)
/* Contents are immutable per container version (a new version gets new
 * inodes), so the kernel may cache names and attributes for long; the
 * root's entries change when containers come and go (we also notify). */
#define TTL_ROOT 1.0
#define TTL_MODEL 3600.0

typedef struct node {
	uint64_t ino;
	char *name;
	int is_dir;
	qsv_version *v;            /* NULL for root and /.qstorefs; else a reference */
	int view;                  /* files: view and index in the container */
	ssize_t file;
	uint64_t size;
	uint64_t *kids;            /* dirs: children inodes, sorted by name */
	size_t n_kids, cap_kids;
	atomic_uint_fast64_t nlookup;
	int live;                  /* reachable from the root */
	uint64_t parent;           /* the directory holding it (may be freed) */
	struct node *hnext;
} node;

/* a backing file that failed to open, logged once per identity */
typedef struct bad { char *name; struct stat st; } bad;

struct qfs_ns {
	qsv_server *srv;
	qsv_log *log;
	char *backing;
	pthread_rwlock_t lock;     /* the tree and the table */
	pthread_mutex_t rescan_mu; /* one rescan at a time */
	node *table[NBUCKETS];
	/* a rescan builds new trees here, under the read lock, and moves them
	 * into table under the write lock: lookups of other models never wait
	 * for a tree to be built (only for the moves) */
	node *pending[NBUCKETS];
	int building;              /* inserts go to pending (the rescan thread only) */
	node *root, *meta;
	qsv_version **models;      /* current versions, sorted by name */
	size_t n_models;
	bad *bads;
	size_t n_bads, cap_bads;
	struct timespec started;
};

static node **bucket(qfs_ns *ns, uint64_t ino) { return &ns->table[(ino * 0x9E3779B97F4A7C15ull) >> 50]; }

static node *find(qfs_ns *ns, uint64_t ino)
{
	for (node *n = *bucket(ns, ino); n; n = n->hnext)
		if (n->ino == ino)
			return n;
	return NULL;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
	return h;
}

static node **pending_bucket(qfs_ns *ns, uint64_t ino)
{
	return &ns->pending[bucket(ns, ino) - ns->table];
}

static void insert(qfs_ns *ns, node *n)
{
	node **b = ns->building ? pending_bucket(ns, n->ino) : bucket(ns, n->ino);
	n->hnext = *b;
	*b = n;
}

/* find() for the builder, which also sees the nodes it has made so far. */
static node *find_built(qfs_ns *ns, uint64_t ino)
{
	node *n = find(ns, ino);
	if (!n)
		for (n = *pending_bucket(ns, ino); n && n->ino != ino; n = n->hnext) {}
	return n;
}

/* Under the write lock: the built trees join the table. */
static void commit_pending(qfs_ns *ns)
{
	for (size_t b = 0; b < NBUCKETS; b++)
		while (ns->pending[b]) {
			node *n = ns->pending[b];
			ns->pending[b] = n->hnext;
			n->hnext = ns->table[b];
			ns->table[b] = n;
		}
}

/* A new node with a fixed inode, or (INO 0) one derived from ID and KEY,
 * probing past collisions. */
static node *new_node(qfs_ns *ns, uint64_t ino, uint64_t id, const char *key, const char *name, int is_dir,
		      qsv_version *v)
{
	if (!ino) {
		ino = hash_str(id ^ 0xcbf29ce484222325ull, key) & 0x7fffffffffffffffull;
		while (ino <= QFS_INO_CEILING || find_built(ns, ino))
			ino = (ino + 1) & 0x7fffffffffffffffull;
	}
	node *n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->ino = ino;
	n->is_dir = is_dir;
	n->file = -1;
	n->live = 1;
	if (v) {
		n->v = v;
		qsv_version_ref(v);
	}
	insert(ns, n);
	return n;
}

static void free_node(qfs_ns *ns, node *n)
{
	node **p = bucket(ns, n->ino);
	while (*p && *p != n)
		p = &(*p)->hnext;
	if (*p)
		*p = n->hnext;
	if (n->v)
		qsv_version_unref(n->v);
	free(n->kids);
	free(n->name);
	free(n);
}

static int add_kid(node *dir, node *kid)
{
	if (qs_grow((void **)&dir->kids, &dir->cap_kids, dir->n_kids + 1, sizeof(uint64_t)))
		return -1;
	dir->kids[dir->n_kids++] = kid->ino;
	kid->parent = dir->ino;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(node *const *)a)->name, (*(node *const *)b)->name);
}

/* Sort DIR's children by name (binary search in lookups). */
static int sort_kids(qfs_ns *ns, node *d)
{
	node **k = malloc((d->n_kids ? d->n_kids : 1) * sizeof(node *));
	if (!k)
		return -1;
	for (size_t i = 0; i < d->n_kids; i++)
		k[i] = find_built(ns, d->kids[i]);
	qsort(k, d->n_kids, sizeof(node *), cmp_name);
	for (size_t i = 0; i < d->n_kids; i++)
		d->kids[i] = k[i]->ino;
	free(k);
	return 0;
}

static node *child(qfs_ns *ns, const node *dir, const char *name)
{
	if (!dir->live) {   /* an old version: children may be gone, order kept */
		for (size_t i = 0; i < dir->n_kids; i++) {
			node *k = find(ns, dir->kids[i]);
			if (k && !strcmp(k->name, name))
				return k;
		}
		return NULL;
	}
	size_t lo = 0, hi = dir->n_kids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		node *k = find(ns, dir->kids[mid]);
		int c = strcmp(k->name, name);
		if (!c)
			return k;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- one model's tree ---------------------------------------------------------- */

/* While a tree is built its directories are unsorted: the directories made
 * so far are found through a hash of (parent inode, name), so that a view of
 * 40,000 files in 40,000 directories builds in linear time. */
typedef struct dirmap {
	node **slot;
	size_t cap, used;
} dirmap;

typedef struct builder {
	qfs_ns *ns;
	qsv_version *v;
	dirmap dirs;
	char key[8192];
} builder;

static size_t dir_hash(uint64_t parent, const char *name, size_t len)
{
	uint64_t h = parent * 0x9E3779B97F4A7C15ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 29);
}

static node *dm_get(const dirmap *m, uint64_t parent, const char *name, size_t len)
{
	for (size_t i = m->cap ? dir_hash(parent, name, len) & (m->cap - 1) : 0; m->cap && m->slot[i];
	     i = (i + 1) & (m->cap - 1)) {
		const node *k = m->slot[i];
		if (k->parent == parent && strlen(k->name) == len && !memcmp(k->name, name, len))
			return m->slot[i];
	}
	return NULL;
}

static int dm_put(dirmap *m, node *n)
{
	if (2 * (m->used + 1) > m->cap) {   /* keep it at most half full */
		dirmap g = { calloc(m->cap ? 2 * m->cap : 64, sizeof(node *)), m->cap ? 2 * m->cap : 64, 0 };
		if (!g.slot)
			return -1;
		for (size_t i = 0; i < m->cap; i++)
			if (m->slot[i])
				dm_put(&g, m->slot[i]);
		free(m->slot);
		*m = g;
	}
	size_t i = dir_hash(n->parent, n->name, strlen(n->name)) & (m->cap - 1);
	while (m->slot[i])
		i = (i + 1) & (m->cap - 1);
	m->slot[i] = n;
	m->used++;
	return 0;
}

/* The directory for PATH's parent under TOP (creating it), the leaf name in *leaf. */
static node *dir_for(builder *b, node *top, const char *prefix, const char *path, const char **leaf)
{
	node *d = top;
	const char *p = path, *slash;
	while ((slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);
		node *sub = dm_get(&b->dirs, d->ino, p, len);
		if (!sub) {
			char part[256];
			if (len >= sizeof(part))
				return NULL;
			memcpy(part, p, len);
			part[len] = 0;
			snprintf(b->key, sizeof(b->key), "%s/%.*s", prefix, (int)(slash - path), path);
			if (!(sub = new_node(b->ns, 0, b->v->id, b->key, part, 1, b->v)) || add_kid(d, sub)
			    || dm_put(&b->dirs, sub))
				return NULL;
		}
		d = sub;
		p = slash + 1;
	}
	*leaf = p;
	return d;
}

static node *add_file(builder *b, node *dir, const char *name, int view, ssize_t fi)
{
	qs_file_info info;
	node *n = new_node(b->ns, 0, b->v->id, b->key, name, 0, b->v);
	if (!n || add_kid(dir, n))
		return NULL;
	n->view = view;
	n->file = fi;
	qs_file_get(b->v->c, (qs_view)view, (size_t)fi, &info);
	n->size = info.size;
	return n;
}

/* <dir>/... with every stored file of VIEW. */
static int build_view(builder *b, node *top, int view)
{
	qs_container *c = b->v->c;
	const char *dirname = qs_view_dir(c, (qs_view)view);
	node *vd = new_node(b->ns, 0, b->v->id, dirname, dirname, 1, b->v);
	if (!vd || add_kid(top, vd))
		return -1;
	for (size_t i = 0; i < qs_file_count(c, (qs_view)view); i++) {
		qs_file_info info;
		const char *leaf;
		qs_file_get(c, (qs_view)view, i, &info);
		if (info.merged)
			continue;   /* a generated single-file view lives at the top */
		node *d = dir_for(b, vd, dirname, info.path, &leaf);
		snprintf(b->key, sizeof(b->key), "%s/%s", dirname, info.path);
		if (!d || !add_file(b, d, leaf, view, (ssize_t)i))
			return -1;
	}
	return 0;
}

static int sort_tree(qfs_ns *ns, node *d)
{
	if (sort_kids(ns, d))
		return -1;
	for (size_t i = 0; i < d->n_kids; i++) {
		node *k = find_built(ns, d->kids[i]);
		if (k->is_dir && sort_tree(ns, k))
			return -1;
	}
	return 0;
}

/* NAME/ with model-<view>.safetensors and <view>/ for every view opened:
 * <dt> (the source dtype), int8, and the lower views asked for */
static node *build_model(qfs_ns *ns, qsv_version *v)
{
	builder b = { .ns = ns, .v = v };
	node *top = new_node(ns, 0, v->id, "", v->name, 1, v);
	int failed = !top;
	for (int view = 0; view < QS_N_VIEWS && !failed; view++) {
		if (!qs_view_dir(v->c, (qs_view)view))
			continue;
		ssize_t single = qs_single_file(v->c, (qs_view)view, NULL);
		snprintf(b.key, sizeof(b.key), "single/%d", view);
		failed = (single >= 0 && !add_file(&b, top, qs_single_file_name(v->c, (qs_view)view), view, single))
			|| build_view(&b, top, view);
	}
	free(b.dirs.slot);
	return failed || sort_tree(ns, top) ? NULL : top;
}

/* A replaced or removed model's tree stays whole while the kernel holds any
 * directory of it: a reader that looked up NAME/ of the old version just
 * before the swap then finds NAME/bf16/config.json in it (the old version's
 * file, consistent with the directory it walked), never ENOENT for a path
 * present before and after a replace.  What nothing holds is freed. */
static void mark_dead(qfs_ns *ns, node *n)
{
	n->live = 0;
	for (size_t i = 0; i < n->n_kids; i++) {
		node *k = find(ns, n->kids[i]);
		if (k)
			mark_dead(ns, k);
	}
}

/* Is N kept by a dead ancestor the kernel still holds? */
static int held_above(qfs_ns *ns, const node *n)
{
	for (node *p = find(ns, n->parent); p && !p->live; p = find(ns, p->parent))
		if (atomic_load(&p->nlookup))
			return 1;
	return 0;
}

/* Free unheld dead N and every unheld node below it; a node the kernel
 * still holds stays, with its subtree, until it is forgotten. */
static void reap(qfs_ns *ns, node *n)
{
	for (size_t i = 0; i < n->n_kids; i++) {
		node *k = find(ns, n->kids[i]);
		if (k && !atomic_load(&k->nlookup))
			reap(ns, k);
		else if (k)
			k->parent = 0;   /* no inode 0: nothing above it holds it now */
	}
	if (n->ino > QFS_INO_CEILING)
		free_node(ns, n);
}

static void retire(qfs_ns *ns, node *n)
{
	mark_dead(ns, n);
	if (!atomic_load(&n->nlookup))
		reap(ns, n);
}

/* ---- answering the kernel ------------------------------------------------------ */

static void fill_attr(qfs_ns *ns, const node *n, qfs_attr *a)
{
	struct stat *st = &a->st;
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mtim = st->st_ctim = st->st_atim = ns->started;
	if (n->v) {
		st->st_uid = n->v->st.st_uid;
		st->st_gid = n->v->st.st_gid;
		st->st_mtim = n->v->st.st_mtim;
		st->st_ctim = n->v->st.st_ctim;
		st->st_atim = n->v->st.st_mtim;
	}
	/* read-only, with the read permissions of the backing container */
	mode_t r = n->v ? n->v->st.st_mode & 0444 : 0444;
	if (n->is_dir) {
		st->st_mode = S_IFDIR | r | r >> 2;   /* search wherever read */
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | r;
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	}
	st->st_blksize = 1 << 20;
	a->ttl = n->v ? TTL_MODEL : TTL_ROOT;
}

int qfs_ns_lookup(qfs_ns *ns, uint64_t parent, const char *name, qfs_attr *a)
{
	pthread_rwlock_rdlock(&ns->lock);
	node *dir = find(ns, parent), *n = dir && dir->is_dir ? child(ns, dir, name) : NULL;
	int rc = n ? 0 : dir && !dir->is_dir ? -ENOTDIR : -ENOENT;
	if (n) {
		atomic_fetch_add(&n->nlookup, 1);
		fill_attr(ns, n, a);
		if (parent == QFS_INO_ROOT)
			a->ttl = TTL_ROOT;   /* the name may point at another version soon */
	}
	pthread_rwlock_unlock(&ns->lock);
	return rc;
}

int qfs_ns_getattr(qfs_ns *ns, uint64_t ino, qfs_attr *a)
{
	pthread_rwlock_rdlock(&ns->lock);
	node *n = find(ns, ino);
	if (n)
		fill_attr(ns, n, a);
	pthread_rwlock_unlock(&ns->lock);
	return n ? 0 : -ENOENT;
}

void qfs_ns_forget(qfs_ns *ns, uint64_t ino, uint64_t nlookup)
{
	pthread_rwlock_rdlock(&ns->lock);
	node *n = find(ns, ino);
	int dead = n && atomic_fetch_sub(&n->nlookup, nlookup) == nlookup && !n->live && ino > QFS_INO_CEILING;
	pthread_rwlock_unlock(&ns->lock);
	if (!dead)
		return;
	pthread_rwlock_wrlock(&ns->lock);
	n = find(ns, ino);
	if (n && !atomic_load(&n->nlookup) && !n->live && !held_above(ns, n))
		reap(ns, n);
	pthread_rwlock_unlock(&ns->lock);
}

int qfs_ns_isdir(qfs_ns *ns, uint64_t ino)
{
	pthread_rwlock_rdlock(&ns->lock);
	node *n = find(ns, ino);
	int rc = !n ? -ENOENT : n->is_dir ? 0 : -ENOTDIR;
	pthread_rwlock_unlock(&ns->lock);
	return rc;
}

int qfs_ns_readdir(qfs_ns *ns, uint64_t ino, uint64_t off, qfs_emit_fn emit, void *ctx)
{
	pthread_rwlock_rdlock(&ns->lock);
	node *d = find(ns, ino);
	int rc = d && d->is_dir ? 0 : -ENOENT;
	for (uint64_t i = off; !rc && i < d->n_kids + 2; i++) {
		if (i < 2) {
			if (emit(ctx, i ? ".." : ".", ino, 1, i + 1))
				break;
			continue;
		}
		node *k = find(ns, d->kids[i - 2]);
		if (k && emit(ctx, k->name, k->ino, k->is_dir, i + 1))
			break;
	}
	pthread_rwlock_unlock(&ns->lock);
	return rc;
}

int qfs_ns_open(qfs_ns *ns, uint64_t ino, qsv_version **v, int *view, size_t *file)
{
	if (ino == QFS_INO_STATS || ino == QFS_INO_CEILING)
		return 1;
	pthread_rwlock_rdlock(&ns->lock);
	node *n = find(ns, ino);
	int rc = !n ? -ENOENT : n->is_dir ? -EISDIR : !n->v ? -ENOENT : 0;
	if (!rc) {
		*v = n->v;
		*view = n->view;
		*file = (size_t)n->file;
		qsv_version_ref(n->v);
	}
	pthread_rwlock_unlock(&ns->lock);
	return rc;
}

int qfs_may_read(const struct stat *st, const qfs_who *who)
{
	if (who->uid == 0)
		return 1;
	if (who->uid == st->st_uid)
		return (st->st_mode & S_IRUSR) != 0;
	int in_group = who->gid == st->st_gid;
	for (int i = 0; i < who->n_groups && !in_group; i++)
		in_group = who->groups[i] == st->st_gid;
	return (st->st_mode & (in_group ? S_IRGRP : S_IROTH)) != 0;
}

struct json_t *qfs_ns_models_json(qfs_ns *ns, const qfs_who *who)
{
	json_t *o = json_object();
	int with_paths = who->uid == 0 || who->uid == geteuid();
	pthread_rwlock_rdlock(&ns->lock);
	for (size_t i = 0; o && i < ns->n_models; i++) {
		qsv_version *v = ns->models[i];
		if (!qfs_may_read(&v->st, who))
			continue;   /* its name alone says what a host serves */
		pthread_mutex_lock(&v->mu);
		json_t *m = json_pack("{s:i}", "open_handles", v->open_files);
		pthread_mutex_unlock(&v->mu);
		if (m && with_paths)
			json_object_set_new(m, "container", json_string(v->path));
		json_object_set_new(o, v->name, m);
	}
	pthread_rwlock_unlock(&ns->lock);
	return o;
}

/* ---- rescans ----------------------------------------------------------------- */

static int cmp_version(const void *a, const void *b)
{
	return strcmp((*(qsv_version *const *)a)->name, (*(qsv_version *const *)b)->name);
}

/* The version named NAME in the sorted array A[0..n), or NULL. */
static qsv_version *by_name(qsv_version **a, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(a[mid]->name, name);
		if (!c)
			return a[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Log a file that failed to open once per identity. */
static void report_bad(qfs_ns *ns, const char *name, const char *path, const struct stat *st, const char *msg)
{
	for (size_t i = 0; i < ns->n_bads; i++)
		if (!strcmp(ns->bads[i].name, name) && qsv_same_identity(&ns->bads[i].st, st))
			return;
	if (!qs_grow((void **)&ns->bads, &ns->cap_bads, ns->n_bads + 1, sizeof(bad))
	    && (ns->bads[ns->n_bads].name = strdup(name)))
		ns->bads[ns->n_bads++].st = *st;
	qsv_logf(ns->log, QSV_WARN, "%s: not shown: %s", path, msg);
}

/* The version for directory entry FILE: the current one when unchanged, a
 * newly opened one, or NULL (not a container, or it failed to open). */
static qsv_version *version_for(qfs_ns *ns, const char *file)
{
	size_t l = strlen(file);
	/* complete containers only: rsync's .NAME.qst.XXXXXX temporaries and
	 * our own .NAME.qst.tmp.XXXXXX start with a dot */
	if (file[0] == '.' || l <= 4 || strcmp(file + l - 4, ".qst"))
		return NULL;
	char *path = NULL, *name = strndup(file, l - 4);
	struct stat st;
	qsv_version *v = NULL;
	if (name && asprintf(&path, "%s/%s", ns->backing, file) >= 0 && !stat(path, &st) && S_ISREG(st.st_mode)) {
		v = by_name(ns->models, ns->n_models, name);
		if (v && qsv_same_identity(&v->st, &st)) {
			qsv_version_ref(v);
		} else {
			qs_error err = { 0 };
			if (!(v = qsv_version_open(ns->srv, name, path, &st, &err)))
				report_bad(ns, name, path, &st, err.msg);
		}
	}
	free(name);
	free(path);
	return v;
}

/* 1. What the directory holds now, opening new versions (no lock held:
 *    opening validates a whole index).  Sorted by name. */
static int scan(qfs_ns *ns, qsv_version ***out, size_t *n_out)
{
	DIR *dir = opendir(ns->backing);
	if (!dir && (errno == ENOENT || errno == ENOTDIR)) {
		/* gone (an unmounted disk, an rm -r): so are its models */
		if (ns->n_models)   /* written under rescan_mu, which we hold */
			qsv_logf(ns->log, QSV_WARN, "%s: the backing directory is gone: no models shown", ns->backing);
		*out = NULL;
		*n_out = 0;
		return 0;
	}
	if (!dir) {
		qsv_logf(ns->log, QSV_ERR, "%s: cannot read the backing directory: %s", ns->backing, strerror(errno));
		return -1;
	}
	qsv_version **now = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		qsv_version *v = version_for(ns, de->d_name);
		if (v && qs_grow((void **)&now, &cap, n + 1, sizeof(*now)))
			qsv_version_unref(v);
		else if (v)
			now[n++] = v;
	}
	closedir(dir);
	if (n)   /* qsort of a NULL array is undefined even for 0 elements */
		qsort(now, n, sizeof(*now), cmp_version);
	*out = now;
	*n_out = n;
	return 0;
}

/* Root entries of the old models that are gone or replaced in NOW. */
static void note_changes(qfs_ns *ns, qsv_version **now, size_t n_now, qfs_changes *ch)
{
	for (size_t i = 0; i < ns->n_models; i++) {
		qsv_version *old = ns->models[i], *cur = by_name(now, n_now, old->name);
		if (cur == old)
			continue;
		qsv_logf(ns->log, QSV_INFO, "%s: container %s", old->path, cur ? "replaced" : "removed");
		if (ch && !qs_grow((void **)&ch->names, &ch->cap, ch->n + 1, sizeof(char *))
		    && (ch->names[ch->n] = strdup(old->name)))
			ch->n++;
	}
}

/* The root's child for version V in the old child list, if still live. */
static node *old_top(qfs_ns *ns, const uint64_t *kids, size_t nk, qsv_version *v)
{
	size_t lo = 0, hi = nk;
	while (lo < hi) {   /* the old list is sorted by name */
		size_t mid = (lo + hi) / 2;
		node *k = find(ns, kids[mid]);
		int c = k ? strcmp(k->name, v->name) : -1;
		if (!c)
			return k->live && k->v == v ? k : NULL;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* 2. Under the read lock: the trees of new versions, into pending.  NULL
 *    where the version is unchanged (or the build failed: swap retries). */
static node **build_new(qfs_ns *ns, qsv_version **now, size_t n_now)
{
	node **built = calloc(n_now + 1, sizeof(node *));
	pthread_rwlock_rdlock(&ns->lock);
	ns->building = 1;
	for (size_t j = 0; built && j < n_now; j++)
		if (by_name(ns->models, ns->n_models, now[j]->name) != now[j])
			built[j] = build_model(ns, now[j]);
	ns->building = 0;
	pthread_rwlock_unlock(&ns->lock);
	return built;
}

/* 3. Under the write lock: retire what went, add what came, new root list. */
static void swap(qfs_ns *ns, qsv_version **now, size_t n_now, node **built)
{
	node *root = ns->root;
	for (size_t i = 0; i < root->n_kids; i++) {
		node *k = find(ns, root->kids[i]);
		if (k && k != ns->meta && k->v && by_name(now, n_now, k->v->name) != k->v)
			retire(ns, k);
	}
	uint64_t *kids = root->kids;   /* the old list; the root gets a new one */
	size_t nk = 0;
	for (size_t i = 0; i < root->n_kids; i++)   /* what retire freed goes; the order stays */
		if (find(ns, kids[i]))
			kids[nk++] = kids[i];
	root->kids = NULL;
	root->n_kids = root->cap_kids = 0;
	add_kid(root, ns->meta);
	for (size_t j = 0; j < n_now; j++) {
		node *top = built && built[j] ? built[j] : old_top(ns, kids, nk, now[j]);
		if (!top && !(top = build_model(ns, now[j]))) {
			qsv_logf(ns->log, QSV_ERR, "%s: out of memory building its tree", now[j]->path);
			continue;
		}
		if (!by_name(ns->models, ns->n_models, now[j]->name))
			qsv_logf(ns->log, QSV_INFO, "%s: container added (%s, %zu + %zu files)", now[j]->path,
				 qs_view_dir(now[j]->c, QS_VIEW_HIGH), qs_file_count(now[j]->c, QS_VIEW_HIGH),
				 qs_file_count(now[j]->c, QS_VIEW_INT8));
		add_kid(root, top);
	}
	free(kids);
	sort_kids(ns, root);
}

void qfs_ns_rescan(qfs_ns *ns, qfs_changes *changed)
{
	qsv_version **now, **old;
	size_t n_now, n_old;
	if (changed)
		memset(changed, 0, sizeof(*changed));
	pthread_mutex_lock(&ns->rescan_mu);
	if (scan(ns, &now, &n_now)) {
		pthread_mutex_unlock(&ns->rescan_mu);
		return;
	}
	note_changes(ns, now, n_now, changed);
	node **built = build_new(ns, now, n_now);
	pthread_rwlock_wrlock(&ns->lock);
	commit_pending(ns);
	swap(ns, now, n_now, built);
	free(built);
	old = ns->models;
	n_old = ns->n_models;
	ns->models = now;
	ns->n_models = n_now;
	pthread_rwlock_unlock(&ns->lock);
	pthread_mutex_unlock(&ns->rescan_mu);
	for (size_t i = 0; i < n_old; i++)
		qsv_version_unref(old[i]);   /* the list's reference; nodes hold their own */
	free(old);
}

void qfs_changes_free(qfs_changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	memset(c, 0, sizeof(*c));
}

/* ---- life ------------------------------------------------------------------------ */

qfs_ns *qfs_ns_new(qsv_server *srv, qsv_log *log, const char *backing, uint64_t ceiling)
{
	qfs_ns *ns = calloc(1, sizeof(*ns));
	if (!ns || !(ns->backing = strdup(backing))) {
		free(ns);
		return NULL;
	}
	ns->srv = srv;
	ns->log = log;
	pthread_rwlock_init(&ns->lock, NULL);
	pthread_mutex_init(&ns->rescan_mu, NULL);
	clock_gettime(CLOCK_REALTIME, &ns->started);
	ns->root = new_node(ns, QFS_INO_ROOT, 0, NULL, "", 1, NULL);
	ns->meta = new_node(ns, QFS_INO_META, 0, NULL, ".qstorefs", 1, NULL);
	node *stats = new_node(ns, QFS_INO_STATS, 0, NULL, "stats", 0, NULL);
	node *ceil = ceiling ? new_node(ns, QFS_INO_CEILING, 0, NULL, "ceiling", 0, NULL) : NULL;
	if (ceil)
		ceil->size = ceiling;
	if (!ns->root || !ns->meta || !stats || (ceiling && !ceil) || add_kid(ns->root, ns->meta)
	    || add_kid(ns->meta, stats) || (ceil && add_kid(ns->meta, ceil))) {
		qfs_ns_free(ns);
		return NULL;
	}
	return ns;
}

void qfs_ns_free(qfs_ns *ns)
{
	if (!ns)
		return;
	for (size_t b = 0; b < NBUCKETS; b++)
		while (ns->table[b])
			free_node(ns, ns->table[b]);
	for (size_t i = 0; i < ns->n_models; i++)
		qsv_version_unref(ns->models[i]);
	free(ns->models);
	for (size_t i = 0; i < ns->n_bads; i++)
		free(ns->bads[i].name);
	free(ns->bads);
	pthread_rwlock_destroy(&ns->lock);
	pthread_mutex_destroy(&ns->rescan_mu);
	free(ns->backing);
	free(ns);
}
