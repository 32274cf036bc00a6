/* config.c - reading qstorefs.conf; see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../serve/log.h"
#include "qstore.h"

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi || !isdigit((unsigned char)*s))
		return -1;
	*out = (unsigned)v;
	return 0;
}

const char *qfs_conf_hint(const char *key)
{
	static const char *const hints[][2] = {
		{ "cache_size", "bytes with an optional K, M, G or T suffix, at least 16M" },
		{ "prefetch_max", "bytes with an optional K, M, G or T suffix; 0 turns prefetch off" },
		{ "workers", "a number from 1 to 256" },
		{ "readahead_kb", "a number from 4 to 1048576" },
		{ "log_level", "error, warning, info or debug" },
		{ "lower_views", "int2..int7 separated by ',' or ':', all or none" },
	};
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (!strcmp(key, hints[i][0]))
			return hints[i][1];
	return "a non-empty value";
}

int qfs_conf_set(qfs_conf *c, const char *key, const char *val)
{
	int bad = !*val;
	if (!strcmp(key, "backing") || !strcmp(key, "mountpoint") || !strcmp(key, "fuse_options")) {
		char **dst = !strcmp(key, "backing") ? &c->backing : !strcmp(key, "mountpoint") ? &c->mountpoint
			: &c->fuse_options;
		free(*dst);
		*dst = bad ? NULL : strdup(val);
	} else if (!strcmp(key, "cache_size")) {
		bad = bad || qs_parse_bytes(val, &c->cache_size) || c->cache_size < QFS_MIN_CACHE;
		c->has_cache_size = 1;
	} else if (!strcmp(key, "prefetch_max")) {
		bad = bad || qs_parse_bytes(val, &c->prefetch_max);
		c->has_prefetch_max = 1;
	} else if (!strcmp(key, "workers")) {
		bad = bad || parse_uint(val, 1, 256, &c->workers);
		c->has_workers = 1;
	} else if (!strcmp(key, "readahead_kb")) {
		bad = bad || parse_uint(val, 4, 1u << 20, &c->readahead_kb);
		c->has_readahead_kb = 1;
	} else if (!strcmp(key, "lower_views")) {
		bad = bad || qs_parse_low_views(val, &c->lower_views);
		c->has_lower_views = 1;
	} else if (!strcmp(key, "log_level")) {
		bad = bad || (c->log_level = qsv_log_parse_level(val)) < 0;
		c->has_log_level = 1;
	} else {
		return -2;
	}
	return bad ? -1 : 0;
}

int qfs_conf_load(const char *path, qfs_conf *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return -2;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[4096];
	int n = 0, rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		n++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, n);
			rc = -1;
			break;
		}
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'key = value', got '%s'", path, n, s);
			rc = -1;
			break;
		}
		*eq = 0;
		char *key = trim(s), *val = trim(eq + 1);
		int r = qfs_conf_set(c, key, val);
		if (r == -2)
			snprintf(err, errlen, "%s:%d: unknown key '%s'", path, n, key);
		else if (r)
			snprintf(err, errlen, "%s:%d: bad value for '%s': '%s' (%s)", path, n, key, val, qfs_conf_hint(key));
		rc = r ? -1 : 0;
	}
	fclose(f);
	return rc;
}

void qfs_conf_free(qfs_conf *c)
{
	free(c->backing);
	free(c->mountpoint);
	free(c->fuse_options);
	memset(c, 0, sizeof(*c));
}
