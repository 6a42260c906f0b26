/* The daemon's control socket: a unix stream socket that serves root and
 * the user who asked for the connection (SO_PEERCRED).  A client sends one
 * request line (proto/ctlmsg.h) and reads lines back: "progress ...", then
 * "ok ..." or "error ..."; `status` answers with one document.  One request
 * a connection: anything after it closes the client.
 *
 * Hostile clients: anyone else is answered and closed at accept; a client
 * has CTL_TIMEOUT_MS for its whole request (a byte a second does not
 * extend it) and CTL_LINE_MAX bytes; at most CTL_CLIENTS_MAX are served at
 * once, and a new one evicts the oldest idle one, so idle connections
 * cannot lock root or the user out.
 *
 * Ownership: struct ctl owns the listening socket, its path and every
 * client. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define CTL_CLIENTS_MAX 64
#define CTL_ACCEPTS 16 /* accepts per wakeup */
#define CTL_TIMEOUT_MS 5000

struct daemon;
struct ctl;

/* Listens on path (replacing a stale socket).  NULL with errno set. */
struct ctl *ctl_new(struct daemon *d, const char *path);
/* Closes every client and the socket, and unlinks it.  NULL ok. */
void ctl_free(struct ctl *c);
/* A progress line, or the outcome, for every `connect` waiting for it (a
 * connect that joins later first gets the progress lines said so far). */
void ctl_progress(struct ctl *c, const char *line);
void ctl_reply_connect(struct ctl *c, bool ok, const char *msg);
/* The answer to a request the daemon deferred (daemon_request returned 0
 * for token): "ok TEXT" or "error TEXT", then the client goes.  A client
 * gone meanwhile: nothing. */
void ctl_answer(struct ctl *c, uint32_t token, bool ok, const char *text);
