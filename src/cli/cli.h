/* Shared by the user-facing commands (cli.c, doctor.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "proto/ctlmsg.h"

/* Sends one request line to the daemon's control socket at path; returns
 * the socket to read the answer from (the caller closes it), or -errno. */
int cli_request(const char *path, const char *req);
/* The same for a request without keys but status's format (text). */
int cli_request_verb(const char *path, enum ctl_verb verb, bool text);
/* The one line for what getopt_long refused (c: ':' or '?') in argument arg. */
void cli_opt_error(const char *cmd, int c, const char *arg);
/* The token file of lab name: 0; -EINVAL (not a lab name) or -ENOENT (no
 * such lab is up), with a one-line reason in err. */
int cli_lab_token(const char *name, char *path, size_t size, char *err, size_t errlen);
/* After a daemon was killed, the laptop's resolver may still send every
 * lookup to its gone DNS server: 1 with what is wrong and the fix, one
 * line each, 0 when not; reads only (`subway quit` repairs).  For when no
 * daemon answers here. */
int cli_resolver_stale(char *what, size_t wlen, char *fix, size_t flen);
