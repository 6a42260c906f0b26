/* One DNS exchange over TCP (RFC 7766 8: two-byte length, then the
 * message): connect, send the query, read one answer, close.  On the
 * event loop, non-blocking, bounded by a timeout.  The callback runs
 * exactly once unless the exchange is cancelled first; the exchange frees
 * itself after the callback returns (the callback must not cancel it). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"

struct dnstcp;
/* err is 0 (msg, len: the answer, valid during the call) or -errno. */
typedef void (*dnstcp_fn)(void *arg, int err, const uint8_t *msg, size_t len);

/* Starts an exchange with addr:port (host order); tos marks the socket
 * (0: none).  Copies q.  NULL on failure (errno set): no callback then. */
struct dnstcp *dnstcp_start(struct loop *l, uint32_t addr, uint16_t port, uint8_t tos, const uint8_t *q,
			    size_t qlen, uint32_t timeout_ms, dnstcp_fn fn, void *arg);
void dnstcp_cancel(struct dnstcp *t); /* accepts NULL; no callback */
