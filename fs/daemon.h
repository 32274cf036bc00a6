/*
 * daemon.h - the state of one qstorefs mount, built by main() and handed to
 * every FUSE operation as the session's userdata (fuse_req_userdata), as
 * libfuse's passthrough_ll does.  fs/ is a thin adapter: the serving layer
 * (serve/) does the work, the namespace (ns.h) knows the tree.
 */
#ifndef QFS_DAEMON_H
#define QFS_DAEMON_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>
#include <stdatomic.h>

#include "../serve/server.h"
#include "handles.h"
#include "ns.h"
#include "options.h"

typedef struct qfs_daemon {
	qfs_options o;
	qsv_log log;
	qsv_server *srv;
	qfs_ns *ns;
	qfs_handles handles;
	struct fuse_session *se;
	atomic_int mounted;        /* kernel notifications only once mounted */
} qfs_daemon;

extern const struct fuse_lowlevel_ops qfs_ops;

/* Rescan the backing directory and tell the kernel what changed. */
void qfs_rescan(qfs_daemon *d);

#endif
