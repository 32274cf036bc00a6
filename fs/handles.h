/*
 * handles.h - open files of the mount, registered so that handles whose
 * release the kernel never sent (a close racing with unmount) are freed at
 * shutdown.
 */
#ifndef QFS_HANDLES_H
#define QFS_HANDLES_H

#include <pthread.h>

#include "../serve/server.h"

typedef struct qfs_handle {
	int has_file;
	qsv_file f;                /* a model file */
	int ceiling;               /* /.qstorefs/ceiling */
	char *text;                /* /.qstorefs/stats: its snapshot */
	size_t text_len;
	struct qfs_handle *prev, *next;
} qfs_handle;

typedef struct qfs_handles {
	pthread_mutex_t mu;
	qfs_handle *head;
} qfs_handles;

void qfs_handles_init(qfs_handles *hs);
/* A new, registered, empty handle; NULL when out of memory. */
qfs_handle *qfs_handle_new(qfs_handles *hs);
void qfs_handle_free(qfs_handles *hs, qfs_handle *h);
/* Free every handle still registered (after the session loop). */
void qfs_handles_destroy(qfs_handles *hs);

#endif
