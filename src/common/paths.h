/* Where things live on the laptop. */
#pragma once
#include <stddef.h>

#define PATHS_RUN_DIR "/run/subway"

/* Where the daemon of the current network namespace listens:
 * /run/subway/daemon-<netns inode>.sock, and its log next to it (either
 * may be NULL).  0 or -errno. */
int paths_daemon(char *sock, size_t socklen, char *log, size_t loglen);
/* /run/subway/daemon-<netns inode>.SUFFIX: the daemon's other files
 * (its intercepts, "intercepts").  0 or -errno. */
int paths_daemon_file(const char *suffix, char *out, size_t len);
