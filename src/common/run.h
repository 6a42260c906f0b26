/* Running external programs without a shell: argv is passed to execvp as
 * is, never through string interpolation.  The caller owns every buffer. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RUN_TIMEOUT_MS 30000

struct run_opts {
	const char *input;  /* written to the child's stdin; NULL: /dev/null */
	char *out;          /* child's stdout and stderr, NUL-terminated; NULL: kept internally */
	size_t out_size;    /* bytes beyond out_size - 1 are read and dropped */
	int timeout_ms;     /* 0: RUN_TIMEOUT_MS; the child is killed after it */
	bool quiet;         /* do not log a failure */
	int stderr_fd;      /* > 0: the child's stderr goes there, not into out */
};

/* Runs argv to completion.  Returns its exit status (0..255), 128 + signal
 * if it was killed, or -errno if it could not be run.  Unless quiet, a
 * non-zero result is logged with the command line and its output. */
int run_argv(char *const argv[], const struct run_opts *opts);
int run_cmd(char *const argv[]);
int run_cmd_input(char *const argv[], const char *input);

/* Starts argv detached: a new session, stdin /dev/null, stdout and stderr
 * appended to log_path (created 0644).  Returns the pid or -errno.  The
 * child stays the caller's child until the caller exits. */
pid_t run_spawn(char *const argv[], const char *log_path);

/* Formats argv as one line for messages ("ip -n x link ..."), truncated. */
const char *run_argv_str(char *const argv[], char *buf, size_t size);
