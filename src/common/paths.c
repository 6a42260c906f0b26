/* Where things live on the laptop (paths.h). */
#include "common/paths.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

int paths_daemon(char *sock, size_t socklen, char *log, size_t loglen)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0)
		return -errno;
	if (sock)
		snprintf(sock, socklen, PATHS_RUN_DIR "/daemon-%lu.sock", (unsigned long)st.st_ino);
	if (log)
		snprintf(log, loglen, PATHS_RUN_DIR "/daemon-%lu.log", (unsigned long)st.st_ino);
	return 0;
}
