/* ready.h - once the mount answers: raise its kernel readahead (sysfs),
 * log the mount and tell systemd READY=1 (Type=notify). */
#ifndef QFS_READY_H
#define QFS_READY_H

#include "daemon.h"

/* Start a detached thread that does it (the session loop must be running
 * for the mount to answer). */
void qfs_ready_start(qfs_daemon *d);

#endif
