/* container.h - the opened container, shared by the reader and the packer
 * (which reads its own output back to hash the INT8 view). */
#ifndef QS_CONTAINER_H
#define QS_CONTAINER_H

#include <pthread.h>

#include "internal.h"

struct qs_container {
	char *path;
	int fd;
	int owns_index;        /* 0 when wrapping the packer's index */
	qs_index *ix;
	qs_index own;
	pthread_mutex_t scale_lock;
	uint32_t **scales;     /* per stored stream: decoded row scales (bits), lazily */
	size_t n_scales;
};

/* Wrap an index that is already in memory (the packer's). */
qs_container *qs_container_wrap(qs_index *ix, int fd, const char *path, qs_error *err);

#endif
