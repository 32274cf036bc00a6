/*
 * failshim.c - LD_PRELOAD shim that makes backing reads fail, for the fault
 * injection tests of qstorefs.  It refuses io_uring (so the daemon falls back
 * to pread) and fails pread() with EIO on files whose path ends with
 * $QS_FAIL_FILE when the read overlaps [$QS_FAIL_FROM, $QS_FAIL_TO).
 * With $QS_GROW_FILE, the first pread of a file whose path ends with it
 * appends a byte to that file first: a source that changes during a pack.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct io_uring;
struct io_uring_params;

int io_uring_queue_init(unsigned entries, struct io_uring *ring, unsigned flags)
{
	(void)entries; (void)ring; (void)flags;
	return -ENOSYS;
}

/* Does FD's path end with SUFFIX?  Its path in PATH (4096 bytes). */
static int fd_is(int fd, const char *suffix, char *path)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, 4095);
	if (n <= 0 || !suffix)
		return 0;
	path[n] = 0;
	size_t sl = strlen(suffix);
	return (size_t)n >= sl && !strcmp(path + n - sl, suffix);
}

static void maybe_grow(int fd)
{
	static int done;
	char path[4096];
	if (done || !fd_is(fd, getenv("QS_GROW_FILE"), path))
		return;
	done = 1;
	int a = open(path, O_WRONLY | O_APPEND);
	if (a >= 0 && write(a, "x", 1) != 1)
		perror("failshim: append");
	if (a >= 0)
		close(a);
}

static int should_fail(int fd, size_t len, off_t off)
{
	const char *suffix = getenv("QS_FAIL_FILE"), *from = getenv("QS_FAIL_FROM"), *to = getenv("QS_FAIL_TO");
	char path[4096];
	if (!suffix || !from || !to || !fd_is(fd, suffix, path))
		return 0;
	uint64_t a = strtoull(from, 0, 10), b = strtoull(to, 0, 10);
	return (uint64_t)off < b && (uint64_t)off + len > a;
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);
	if (!real)
		real = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
	maybe_grow(fd);
	if (should_fail(fd, len, off)) {
		errno = EIO;
		return -1;
	}
	return real(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off) __attribute__((alias("pread")));
