/* Socket helpers.  All sockets are non-blocking and close-on-exec. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* TCP listener on addr:port (host order; port 0 picks one). fd or -errno. */
int sock_listen_tcp(uint32_t addr, uint16_t port, int backlog);
/* Non-blocking connect; fd (connection in progress) or -errno. tos: IP_TOS, 0 for none. */
int sock_connect_tcp(uint32_t addr, uint16_t port, uint8_t tos);
/* Result of a non-blocking connect once writable: 0 or -errno (SO_ERROR). */
int sock_connect_result(int fd);
/* One datagram into buf, and the address it came from (host order) when
 * from is not NULL: its length; -EAGAIN when none is left to read; or
 * another -errno the socket reports about one sent earlier (an ICMP error:
 * ECONNREFUSED...), after which reading goes on. */
ssize_t sock_recv(int fd, void *buf, size_t cap, uint32_t *from);
int sock_local(int fd, uint32_t *addr, uint16_t *port);
int sock_peer(int fd, uint32_t *addr, uint16_t *port);
int sock_nodelay(int fd);
/* Delayed ACKs from the start (TCP_QUICKACK off): on a request/response
 * connection the ACK then rides on the answer instead of a packet of its own. */
int sock_delack(int fd);
/* Makes the next close() send a RST instead of a FIN. */
int sock_linger_rst(int fd);
/* ... and back: close() sends a FIN after what is queued. */
int sock_linger_default(int fd);
int sock_nonblock(int fd);
/* Raises RLIMIT_NOFILE to min(want, hard limit, or nr_open when root). */
void sock_raise_nofile(uint64_t want);
/* TCP keepalive: first probe after idle_s, then every intvl_s, cnt probes. */
int sock_keepalive(int fd, int idle_s, int intvl_s, int cnt);
