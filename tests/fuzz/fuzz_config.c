/*
 * fuzz_config.c - libFuzzer target for the qstorefs configuration parser:
 * the input is a whole configuration file.
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../fs/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	char path[64], err[1024];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	qfs_conf c = { 0 };
	qfs_conf_load(path, &c, err, sizeof(err));
	qfs_conf_free(&c);
	close(fd);
	return 0;
}
