/*
 * handles.h - open files of the mount, registered so that handles whose
 * release the kernel never sent (a close racing with unmount) are freed at
 * shutdown.
 *
 * A handle is counted: its open holds it until RELEASE, and each READ holds
 * it while it replies.  The kernel may send RELEASE as soon as it has a
 * READ's reply, while the thread that wrote the reply is still returning
 * from writev (ASan, which checks the iovecs after the call, saw the stats
 * text freed under it): the last of the two frees the handle.
 */
#ifndef QFS_HANDLES_H
#define QFS_HANDLES_H

#include <pthread.h>
#include <stdatomic.h>

#include "../serve/server.h"

typedef struct qfs_handle {
	int has_file;
	qsv_file f;                /* a model file */
	int ceiling;               /* /.qstorefs/ceiling */
	char *text;                /* /.qstorefs/stats: its snapshot */
	size_t text_len;
	atomic_int refs;           /* the open's, and each READ's in progress */
	struct qfs_handle *prev, *next;
} qfs_handle;

typedef struct qfs_handles {
	pthread_mutex_t mu;
	qfs_handle *head;
} qfs_handles;

void qfs_handles_init(qfs_handles *hs);
/* A new, registered, empty handle, held once; NULL when out of memory. */
qfs_handle *qfs_handle_new(qfs_handles *hs);
/* Hold H once more (a READ), and drop a hold: the last one frees it. */
qfs_handle *qfs_handle_hold(qfs_handle *h);
void qfs_handle_put(qfs_handles *hs, qfs_handle *h);
/* Free every handle still registered (after the session loop). */
void qfs_handles_destroy(qfs_handles *hs);

#endif
