/* ns.c - building and swapping the namespace; see ns.h. */
#include "ns.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

pthread_rwlock_t qfs_ns_lock = PTHREAD_RWLOCK_INITIALIZER;

#define NBUCKETS (1 << 14)
static qfs_node *table[NBUCKETS];
static qfs_node *root, *meta, *stats, *ceiling;
static qfs_model **models;          /* current versions, sorted by name */
static size_t n_models;
static pthread_mutex_t rescan_mu = PTHREAD_MUTEX_INITIALIZER;

/* names that failed to open, so each bad file is logged once per identity */
typedef struct bad { char *name; struct stat st; } bad;
static bad *bads;
static size_t n_bads;

static qfs_node **bucket(uint64_t ino) { return &table[(ino * 0x9E3779B97F4A7C15ull) >> 50]; }

qfs_node *qfs_ns_node(uint64_t ino)
{
	for (qfs_node *n = *bucket(ino); n; n = n->hnext)
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

/* A new node with an inode derived from KEY; probes past collisions. */
static qfs_node *new_node(uint64_t id, const char *key, const char *name, int is_dir, qfs_model *m)
{
	uint64_t ino = hash_str(id ^ 0xcbf29ce484222325ull, key) & 0x7fffffffffffffffull;
	while (ino <= QFS_INO_CEILING || qfs_ns_node(ino))
		ino = (ino + 1) & 0x7fffffffffffffffull;
	qfs_node *n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->ino = ino;
	n->is_dir = is_dir;
	n->file = -1;
	n->live = 1;
	if (m) {
		n->model = m;
		qfs_model_ref(m);
	}
	n->hnext = *bucket(ino);
	*bucket(ino) = n;
	return n;
}

static void free_node(qfs_node *n)
{
	qfs_node **p = bucket(n->ino);
	while (*p && *p != n)
		p = &(*p)->hnext;
	if (*p)
		*p = n->hnext;
	if (n->model)
		qfs_model_unref(n->model);
	free(n->kids);
	free(n->name);
	free(n);
}

static int add_kid(qfs_node *dir, qfs_node *kid)
{
	if (dir->n_kids == dir->cap_kids) {
		size_t cap = dir->cap_kids ? 2 * dir->cap_kids : 8;
		uint64_t *k = realloc(dir->kids, cap * sizeof(uint64_t));
		if (!k)
			return -1;
		dir->kids = k;
		dir->cap_kids = cap;
	}
	dir->kids[dir->n_kids++] = kid->ino;
	return 0;
}

static int cmp_kid(const void *a, const void *b)
{
	return strcmp(qfs_ns_node(*(const uint64_t *)a)->name, qfs_ns_node(*(const uint64_t *)b)->name);
}

qfs_node *qfs_ns_child(const qfs_node *dir, const char *name)
{
	if (!dir->live) {   /* an old version: children may be gone */
		for (size_t i = 0; i < dir->n_kids; i++) {
			qfs_node *k = qfs_ns_node(dir->kids[i]);
			if (k && !strcmp(k->name, name))
				return k;
		}
		return NULL;
	}
	size_t lo = 0, hi = dir->n_kids;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		qfs_node *k = qfs_ns_node(dir->kids[mid]);
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

/* The directory for PATH's parent under DIR (creating it), keyed KEY/... */
static qfs_node *dir_for(qfs_node *top, qfs_model *m, const char *keyprefix, const char *path, const char **leaf)
{
	qfs_node *d = top;
	const char *p = path, *slash;
	char key[8192];
	while ((slash = strchr(p, '/'))) {
		char part[256];
		size_t len = (size_t)(slash - p);
		if (len >= sizeof(part))
			return NULL;
		memcpy(part, p, len);
		part[len] = 0;
		qfs_node *sub = NULL;
		for (size_t i = 0; i < d->n_kids && !sub; i++) {
			qfs_node *k = qfs_ns_node(d->kids[i]);
			if (k->is_dir && !strcmp(k->name, part))
				sub = k;
		}
		if (!sub) {
			snprintf(key, sizeof(key), "%s/%.*s", keyprefix, (int)(slash - path), path);
			if (!(sub = new_node(m->id, key, part, 1, m)) || add_kid(d, sub))
				return NULL;
		}
		d = sub;
		p = slash + 1;
	}
	*leaf = p;
	return d;
}

static void sort_tree(qfs_node *d)
{
	if (d->n_kids)
		qsort(d->kids, d->n_kids, sizeof(uint64_t), cmp_kid);
	for (size_t i = 0; i < d->n_kids; i++) {
		qfs_node *k = qfs_ns_node(d->kids[i]);
		if (k->is_dir)
			sort_tree(k);
	}
}

static qfs_node *add_file(qfs_node *dir, qfs_model *m, const char *key, const char *name, int view, ssize_t fi)
{
	qs_file_info info;
	qfs_node *n = new_node(m->id, key, name, 0, m);
	if (!n || add_kid(dir, n))
		return NULL;
	n->view = view;
	n->file = fi;
	qs_file_get(m->c, (qs_view)view, (size_t)fi, &info);
	n->size = info.size;
	return n;
}

/* NAME/ with model-int8.safetensors, model-<dt>.safetensors, <dt>/, int8/ */
static qfs_node *build_model(qfs_model *m)
{
	qfs_node *top = new_node(m->id, "", m->name, 1, m);
	if (!top)
		return NULL;
	char key[8192];
	for (int v = 0; v < 2; v++) {
		const char *dirname = v ? "int8" : m->dtype_dir;
		if (m->single[v] >= 0) {
			snprintf(key, sizeof(key), "single/%d", v);
			if (!add_file(top, m, key, m->single_name[v], v, m->single[v]))
				return NULL;
		}
		qfs_node *vd = new_node(m->id, dirname, dirname, 1, m);
		if (!vd || add_kid(top, vd))
			return NULL;
		for (size_t i = 0; i < qs_file_count(m->c, (qs_view)v); i++) {
			qs_file_info info;
			const char *leaf;
			qs_file_get(m->c, (qs_view)v, i, &info);
			if (!info.has_sha256)
				continue;   /* the merged single-file view lives at the top */
			qfs_node *d = dir_for(vd, m, dirname, info.path, &leaf);
			snprintf(key, sizeof(key), "%s/%s", dirname, info.path);
			if (!d || !add_file(d, m, key, leaf, v, (ssize_t)i))
				return NULL;
		}
	}
	sort_tree(top);
	return top;
}

/* Mark a model's subtree dead and free what the kernel no longer
 * references; a directory the kernel still holds keeps its live children. */
static void retire(qfs_node *n)
{
	n->live = 0;
	size_t keep = 0;
	for (size_t i = 0; i < n->n_kids; i++) {
		qfs_node *k = qfs_ns_node(n->kids[i]);
		if (k)
			retire(k);
		if (qfs_ns_node(n->kids[i]))
			n->kids[keep++] = n->kids[i];
	}
	n->n_kids = keep;
	if (!atomic_load(&n->nlookup) && n->ino > QFS_INO_CEILING)
		free_node(n);
}

void qfs_ns_forget(uint64_t ino, uint64_t nlookup)
{
	pthread_rwlock_rdlock(&qfs_ns_lock);
	qfs_node *n = qfs_ns_node(ino);
	int dead = n && atomic_fetch_sub(&n->nlookup, nlookup) == nlookup && !n->live && ino > QFS_INO_CEILING;
	pthread_rwlock_unlock(&qfs_ns_lock);
	if (dead) {
		pthread_rwlock_wrlock(&qfs_ns_lock);
		n = qfs_ns_node(ino);
		if (n && !atomic_load(&n->nlookup) && !n->live)
			free_node(n);
		pthread_rwlock_unlock(&qfs_ns_lock);
	}
}

void qfs_ns_fill_attr(const qfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	static struct timespec started;
	if (!started.tv_sec)
		clock_gettime(CLOCK_REALTIME, &started);
	st->st_mtim = st->st_ctim = st->st_atim = started;
	if (n->model) {
		st->st_uid = n->model->st.st_uid;
		st->st_gid = n->model->st.st_gid;
		st->st_mtim = n->model->st.st_mtim;
		st->st_ctim = n->model->st.st_ctim;
		st->st_atim = n->model->st.st_mtim;
	}
	/* read-only, with the read permissions of the backing container */
	mode_t r = n->model ? n->model->st.st_mode & 0444 : 0444;
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
}

int qfs_ns_init(void)
{
	root = calloc(1, sizeof(*root));
	meta = calloc(1, sizeof(*meta));
	stats = calloc(1, sizeof(*stats));
	if (!root || !meta || !stats)
		return -1;
	*root = (qfs_node){ .ino = QFS_INO_ROOT, .name = strdup(""), .is_dir = 1, .live = 1, .file = -1 };
	*meta = (qfs_node){ .ino = QFS_INO_META, .name = strdup(".qstorefs"), .is_dir = 1, .live = 1, .file = -1 };
	*stats = (qfs_node){ .ino = QFS_INO_STATS, .name = strdup("stats"), .live = 1, .file = -1 };
	for (qfs_node *n = root; n; n = n == root ? meta : n == meta ? stats : NULL) {
		n->hnext = *bucket(n->ino);
		*bucket(n->ino) = n;
	}
	if (add_kid(meta, stats))
		return -1;
	uint64_t csize = qfs_daemon()->o.ceiling;
	if (csize) {
		ceiling = calloc(1, sizeof(*ceiling));
		if (!ceiling)
			return -1;
		*ceiling = (qfs_node){ .ino = QFS_INO_CEILING, .name = strdup("ceiling"), .live = 1, .file = -1,
				       .size = csize };
		ceiling->hnext = *bucket(ceiling->ino);
		*bucket(ceiling->ino) = ceiling;
		if (add_kid(meta, ceiling))
			return -1;
	}
	return 0;
}

static int cmp_model(const void *a, const void *b)
{
	return strcmp((*(qfs_model *const *)a)->name, (*(qfs_model *const *)b)->name);
}

static int same_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
		&& a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static qfs_model *current(const char *name)
{
	for (size_t i = 0; i < n_models; i++)
		if (!strcmp(models[i]->name, name))
			return models[i];
	return NULL;
}

static int known_bad(const char *name, const struct stat *st)
{
	for (size_t i = 0; i < n_bads; i++)
		if (!strcmp(bads[i].name, name) && same_version(&bads[i].st, st))
			return 1;
	bad *nb = realloc(bads, (n_bads + 1) * sizeof(bad));
	if (nb) {
		bads = nb;
		bads[n_bads].name = strdup(name);
		bads[n_bads++].st = *st;
	}
	return 0;
}

void qfs_ns_rescan(void)
{
	qfs_state *d = qfs_daemon();
	pthread_mutex_lock(&rescan_mu);
	DIR *dir = opendir(d->o.backing);
	if (!dir) {
		qfs_log(QFS_ERR, "%s: cannot read the backing directory: %s", d->o.backing, strerror(errno));
		pthread_mutex_unlock(&rescan_mu);
		return;
	}
	/* 1. what the directory holds now, opening new versions (no lock held:
	 *    opening validates the whole index) */
	qfs_model **now = NULL;
	size_t n_now = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		/* complete containers only: rsync's .NAME.qst.XXXXXX temporaries
		 * and our own .NAME.qst.tmp.XXXXXX start with a dot */
		if (de->d_name[0] == '.' || l <= 4 || strcmp(de->d_name + l - 4, ".qst"))
			continue;
		char *path = NULL, *name = strndup(de->d_name, l - 4);
		struct stat st;
		if (!name || asprintf(&path, "%s/%s", d->o.backing, de->d_name) < 0 || stat(path, &st) || !S_ISREG(st.st_mode)) {
			free(name);
			free(path);
			continue;
		}
		qfs_model *m = current(name);
		if (m && same_version(&m->st, &st)) {
			qfs_model_ref(m);
		} else {
			qs_error err = { 0 };
			m = qfs_model_open(name, path, &st, &err);
			if (!m && !known_bad(name, &st))
				qfs_log(QFS_WARN, "%s: not shown: %s", path, err.msg);
		}
		qfs_model **grown = m ? realloc(now, (n_now + 1) * sizeof(*now)) : NULL;
		if (grown) {
			now = grown;
			now[n_now++] = m;
		} else if (m) {
			qfs_model_unref(m);
		}
		free(name);
		free(path);
	}
	closedir(dir);
	if (n_now)
		qsort(now, n_now, sizeof(*now), cmp_model);

	/* 2. swap the trees under the write lock */
	char **changed = calloc(n_models + n_now + 1, sizeof(char *));
	size_t n_changed = 0;
	pthread_rwlock_wrlock(&qfs_ns_lock);
	for (size_t i = 0; i < n_models; i++) {
		qfs_model *old = models[i];
		int kept = 0;
		for (size_t k = 0; k < n_now && !kept; k++)
			kept = now[k] == old;
		if (kept)
			continue;
		int replaced = 0;
		for (size_t k = 0; k < n_now && !replaced; k++)
			replaced = !strcmp(now[k]->name, old->name);
		qfs_log(QFS_INFO, "%s: container %s", old->path, replaced ? "replaced" : "removed");
		if (changed)
			changed[n_changed++] = strdup(old->name);
	}
	for (size_t i = 0; i < root->n_kids; i++) {
		qfs_node *k = qfs_ns_node(root->kids[i]);
		if (k && k != meta && k->model) {
			int kept = 0;
			for (size_t j = 0; j < n_now && !kept; j++)
				kept = now[j] == k->model;
			if (!kept)
				retire(k);
		}
	}
	uint64_t *kids = root->kids;   /* the old list; the root gets a new one */
	size_t nk = root->n_kids;
	root->kids = NULL;
	root->n_kids = root->cap_kids = 0;
	add_kid(root, meta);
	for (size_t j = 0; j < n_now; j++) {
		qfs_node *top = NULL;
		for (size_t i = 0; i < nk && !top; i++) {
			qfs_node *k = qfs_ns_node(kids[i]);
			if (k && k->live && k->model == now[j])
				top = k;
		}
		if (!top) {
			top = build_model(now[j]);
			if (!top) {
				qfs_log(QFS_ERR, "%s: out of memory building its tree", now[j]->path);
				continue;
			}
			if (!current(now[j]->name))
				qfs_log(QFS_INFO, "%s: container added (%s, %zu + %zu files)", now[j]->path,
					now[j]->dtype_dir, qs_file_count(now[j]->c, QS_VIEW_HIGH),
					qs_file_count(now[j]->c, QS_VIEW_INT8));
		}
		add_kid(root, top);
	}
	free(kids);
	if (root->n_kids)
		qsort(root->kids, root->n_kids, sizeof(uint64_t), cmp_kid);
	qfs_model **old = models;
	size_t n_old = n_models;
	models = now;
	n_models = n_now;
	pthread_rwlock_unlock(&qfs_ns_lock);
	for (size_t i = 0; i < n_old; i++)
		qfs_model_unref(old[i]);   /* the list's reference; nodes hold their own */
	free(old);
	/* 3. tell the kernel: forget the dentries of what changed */
	for (size_t i = 0; i < n_changed; i++) {
		if (atomic_load(&d->mounted))
			fuse_lowlevel_notify_inval_entry(d->se, QFS_INO_ROOT, changed[i], strlen(changed[i]));
		free(changed[i]);
	}
	free(changed);
	pthread_mutex_unlock(&rescan_mu);
}

json_t *qfs_ns_models_json(void)
{
	json_t *o = json_object();
	pthread_rwlock_rdlock(&qfs_ns_lock);
	for (size_t i = 0; i < n_models; i++) {
		qfs_model *m = models[i];
		pthread_mutex_lock(&m->mu);
		json_object_set_new(o, m->name, json_pack("{s:s, s:i}", "container", m->path, "open_handles", m->open_handles));
		pthread_mutex_unlock(&m->mu);
	}
	pthread_rwlock_unlock(&qfs_ns_lock);
	return o;
}

void qfs_ns_destroy(void)
{
	pthread_rwlock_wrlock(&qfs_ns_lock);
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (table[b]) {
			qfs_node *n = table[b];
			table[b] = n->hnext;
			if (n->model)
				qfs_model_unref(n->model);
			free(n->kids);
			free(n->name);
			free(n);
		}
	}
	for (size_t i = 0; i < n_models; i++)
		qfs_model_unref(models[i]);
	free(models);
	models = NULL;
	n_models = 0;
	for (size_t i = 0; i < n_bads; i++)
		free(bads[i].name);
	free(bads);
	pthread_rwlock_unlock(&qfs_ns_lock);
}
