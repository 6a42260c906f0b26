/* A small cache of DNS answers, keyed by (name, type, class, DO bit),
 * capped in entries and bytes, least recently used evicted first.  An
 * entry lives for the TTL it was given (at most DNSCACHE_TTL_MAX).  Time
 * is passed in, so the cache is pure and testable. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dnsmsg.h"

#define DNSCACHE_TTL_MAX 3600

struct dnscache;

struct dnscache_key {
	struct dns_name name; /* compared case-insensitively */
	uint16_t type, klass;
	bool dnssec_ok;
};

struct dnscache *dnscache_new(unsigned max_entries, size_t max_bytes);
void dnscache_free(struct dnscache *c); /* accepts NULL */
/* Stores a copy of msg for ttl seconds, replacing an entry with the same
 * key.  0, or -ENOMEM / -E2BIG (larger than the byte cap). */
int dnscache_put(struct dnscache *c, const struct dnscache_key *k, const uint8_t *msg, size_t len, uint32_t ttl,
		 uint64_t now_ms);
/* The stored answer and its age in whole seconds, or NULL when absent or
 * expired.  The pointer is valid until the next put. */
const uint8_t *dnscache_get(struct dnscache *c, const struct dnscache_key *k, uint64_t now_ms, size_t *len,
			    uint32_t *age);
unsigned dnscache_entries(const struct dnscache *c);
size_t dnscache_bytes(const struct dnscache *c);
