/* Accepted connections until they authenticate (conn.c says how). */
#pragma once
#include <stdint.h>

#include "common/loop.h"
#include "net/wire.h"

struct mgr;

/* Takes fd (just accepted): TLS, HELLO, AUTH follow. */
void conn_accept(struct mgr *m, int fd);
void conn_free_all(struct mgr *m);
/* Queues a text frame (AUTH_FAIL or ERROR), flushes what it can, removes
 * the fd from the loop and closes it (w->fd becomes -1).  The caller
 * still frees the wire's buffers. */
void conn_text_close(struct loop *l, struct wire *w, uint8_t type, const char *text);
