/*
 * hublink.c - `qstore hub-link MNT/NAME ORG/REPO`: a HuggingFace hub cache
 * entry whose snapshot is the mounted model, so that from_pretrained("ORG/
 * REPO") and SentenceTransformer("ORG/REPO") load it through the mount (with
 * HF_HUB_OFFLINE=1, or once the hub is unreachable).
 *
 * The cache layout is the hub's own: CACHE/models--ORG--REPO/refs/main holds
 * a revision, and snapshots/REVISION/ holds the model's files, here as
 * symlinks into the mount.  The revision is derived from the container: 40
 * hex digits of the SHA-256 over the view's file paths and their recorded
 * SHA-256s, so it changes exactly when the served bytes do (an rsync'd new
 * version gets a new snapshot; the old one stays, as the hub leaves it).
 * The container is found through MNT/.qstorefs/stats, which names it.
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "out.h"

/* snprintf into a path buffer; -1 (ENAMETOOLONG) when it does not fit */
static int pathf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ORG/REPO as the hub allows it: two names of [A-Za-z0-9._-], no "..". */
static int repo_ok(const char *r)
{
	const char *slash = strchr(r, '/');
	if (!slash || slash == r || !slash[1] || strchr(slash + 1, '/') || strstr(r, ".."))
		return 0;
	for (const char *p = r; *p; p++)
		if (*p != '/' && *p != '.' && *p != '_' && *p != '-' && !(*p >= '0' && *p <= '9')
		    && !((*p | 32) >= 'a' && (*p | 32) <= 'z'))
			return 0;
	return 1;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	if (pathf(buf, sizeof(buf), "%s", path))
		return -1;
	for (char *s = buf + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(buf, 0777) && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(buf, 0777) && errno != EEXIST ? -1 : 0;
}

/* The backing container of NAME, from the mount's stats file. */
static char *container_of(const char *mnt, const char *name)
{
	char path[PATH_MAX];
	if (pathf(path, sizeof(path), "%s/.qstorefs/stats", mnt))
		return NULL;
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	const char *c = json_string_value(json_object_get(json_object_get(json_object_get(j, "models"), name),
							  "container"));
	char *out = c ? strdup(c) : NULL;
	json_decref(j);
	return out;
}

/* 40 hex digits of SHA-256 over "path\0sha256" of every file of VIEW.  A
 * lower view's files have no recorded hash; they are a function of the INT8
 * view's (FORMAT.md section 7), so its revision covers those and the view's
 * name. */
static int revision_of(qs_container *c, int view, char rev[41])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	if (ok && view >= QS_VIEW_INT2) {
		char r8[41];
		ok = !revision_of(c, QS_VIEW_INT8, r8) && EVP_DigestUpdate(md, r8, 40)
			&& EVP_DigestUpdate(md, qs_view_name((qs_view)view), strlen(qs_view_name((qs_view)view)) + 1);
	}
	for (size_t i = 0; ok && i < qs_file_count(c, (qs_view)view); i++) {
		qs_file_info fi;
		qs_file_get(c, (qs_view)view, i, &fi);
		ok = EVP_DigestUpdate(md, fi.path, strlen(fi.path) + 1) && EVP_DigestUpdate(md, fi.sha256, 32)
			&& EVP_DigestUpdate(md, &fi.size, sizeof(fi.size));
	}
	ok = ok && EVP_DigestFinal_ex(md, d, &n) && n >= 20;
	EVP_MD_CTX_free(md);
	if (ok)
		qs_hex(d, 20, rev);
	return ok ? 0 : -1;
}

/* snapshots/REV/PATH -> TARGET, replacing what a previous run left there */
static int link_file(const char *snap, const char *rel, const char *target)
{
	char dst[PATH_MAX], dir[PATH_MAX];
	if (pathf(dst, sizeof(dst), "%s/%s", snap, rel) || pathf(dir, sizeof(dir), "%s", dst) || mkdir_p(dirname(dir)))
		return -1;
	unlink(dst);
	return symlink(target, dst);
}

int qstore_hub_link(const char *model_dir, const char *repo, const char *cache, int view)
{
	char md[PATH_MAX], mnt[PATH_MAX], name[NAME_MAX + 1], rev[41], snap[PATH_MAX], ref[PATH_MAX];
	if (!repo_ok(repo)) {
		say(stderr, "qstore hub-link: '%s' is not a hub repository name (ORG/NAME of letters, digits, . _ -)", repo);
		return 2;
	}
	if (!realpath(model_dir, md)) {
		say(stderr, "qstore hub-link: %s: %s", model_dir, strerror(errno));
		return 1;
	}
	const char *slash = strrchr(md, '/');
	if (pathf(mnt, sizeof(mnt), "%s", md) || pathf(name, sizeof(name), "%s", slash ? slash + 1 : md)) {
		say(stderr, "qstore hub-link: %s: %s", model_dir, strerror(errno));
		return 1;
	}
	char *ct_path = container_of(dirname(mnt), name);
	qs_error e = { 0 };
	qs_container *c = ct_path ? qs_open_ex(ct_path, view >= QS_VIEW_INT2 ? QS_OPEN_INT(view) : 0, &e) : NULL;
	if (!c) {
		say(stderr, "qstore hub-link: %s: %s", model_dir,
		    ct_path ? e.msg : "not a model directory of a qstorefs mount (its .qstorefs/stats does not list it)");
		free(ct_path);
		return 1;
	}
	free(ct_path);
	const char *vdir = qs_view_dir(c, (qs_view)view);
	int rc = revision_of(c, view, rev);
	char org[256], rname[256];
	sscanf(repo, "%255[^/]/%255s", org, rname);
	rc = rc || pathf(snap, sizeof(snap), "%s/models--%s--%s/snapshots/%s", cache, org, rname, rev)
		|| pathf(ref, sizeof(ref), "%s/models--%s--%s/refs", cache, org, rname) || mkdir_p(snap) || mkdir_p(ref);
	for (size_t i = 0; !rc && i < qs_file_count(c, (qs_view)view); i++) {
		qs_file_info fi;
		char target[PATH_MAX];
		qs_file_get(c, (qs_view)view, i, &fi);
		rc = pathf(target, sizeof(target), "%s/%s/%s", md, vdir, fi.path) || link_file(snap, fi.path, target);
	}
	if (!rc) {   /* refs/main last, written atomically: a loader never sees a half-made snapshot */
		char tmp[PATH_MAX], main_ref[PATH_MAX];
		FILE *f = pathf(tmp, sizeof(tmp), "%s/.main.tmp.%ld", ref, (long)getpid())
			|| pathf(main_ref, sizeof(main_ref), "%s/main", ref) ? NULL : fopen(tmp, "w");
		rc = !f || fputs(rev, f) < 0 || fclose(f) || rename(tmp, main_ref);
		if (rc)
			unlink(tmp);
	}
	if (rc)
		say(stderr, "qstore hub-link: %s: %s", cache, strerror(errno));
	else
		say(stdout, "%s -> %s/%s (revision %s) in %s", repo, model_dir, vdir, rev, cache);
	qs_close(c);
	return rc ? 1 : 0;
}
