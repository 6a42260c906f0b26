/* The daemon's NAT table for the hairpin (ARCHITECTURE.md, data path):
 * maps an app-side TCP connection (src, sport, dst, dport) to a NAT tuple
 * (F address, NAT port) and back, both in O(1).  Pure: no I/O.
 *
 * NAT tuples come from a space of n_addrs addresses starting at base, with
 * ports NAT_PORT_MIN..65535, handed out round-robin from a random start
 * (seed) and never while in use: a tuple is reused only after the whole
 * space has gone round, so the kernel never sees a tuple it still holds
 * in TIME_WAIT (at 10,000 connections/s and 64 addresses: ~6 minutes). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAT_PORT_MIN 1024u

struct nat_key {
	uint32_t src, dst;      /* host order */
	uint16_t sport, dport;
};

struct nat_tuple {
	uint32_t addr;  /* F */
	uint16_t port;  /* np */
};

struct nat_table;

/* max_entries bounds memory; the addresses are base + i * stride for i <
 * n_addrs (stride 1: a block; more: a lane's share, lane.h).  NULL on
 * allocation failure, if max_entries, n_addrs or stride is 0, or if the
 * last address passes 255.255.255.255. */
struct nat_table *nat_new(uint32_t max_entries, uint32_t base, uint32_t n_addrs, uint32_t stride,
			  uint64_t seed);
void nat_free(struct nat_table *t); /* accepts NULL */

/* Adds a mapping for `app` carrying `data`; fills *out with its tuple.
 * 0, -EEXIST if app is already mapped, -ENOSPC when full, -ENOMEM if the
 * table could not grow. */
int nat_insert(struct nat_table *t, const struct nat_key *app, void *data, struct nat_tuple *out);
void *nat_lookup_app(const struct nat_table *t, const struct nat_key *app);
void *nat_lookup_tuple(const struct nat_table *t, uint32_t addr, uint16_t port);
/* Removes the mapping of `app`; returns its data or NULL. */
void *nat_remove(struct nat_table *t, const struct nat_key *app);
uint32_t nat_count(const struct nat_table *t);
/* True if addr is one of the table's F addresses. */
bool nat_owns_addr(const struct nat_table *t, uint32_t addr);
/* Bytes the table holds (it grows, never shrinks): for tests and status. */
size_t nat_mem_bytes(const struct nat_table *t);
