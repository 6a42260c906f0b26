/* Where things live on the laptop (paths.h). */
#include "common/paths.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

int paths_daemon_file(const char *suffix, char *out, size_t len)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0)
		return -errno;
	if (snprintf(out, len, PATHS_RUN_DIR "/daemon-%lu.%s", (unsigned long)st.st_ino, suffix) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int paths_daemon(char *sock, size_t socklen, char *log, size_t loglen)
{
	int r = 0;

	if (sock)
		r = paths_daemon_file("sock", sock, socklen);
	if (log && r == 0)
		r = paths_daemon_file("log", log, loglen);
	return r;
}
