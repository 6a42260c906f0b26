/* Shared by the user-facing commands (cli.c, doctor.c). */
#pragma once

#define LAB_RUN_DIR "/run/subway-lab"

/* Sends one request line to the daemon's control socket at path; returns
 * the socket to read the answer from (the caller closes it), or -errno. */
int cli_request(const char *path, const char *req);
