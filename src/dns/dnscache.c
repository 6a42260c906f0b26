/* DNS answer cache: a hash table of chains plus an LRU list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "dns/dnscache.h"

#define BUCKETS 1024 /* power of two */

struct centry {
	struct centry *hnext;
	struct centry *prev, *next; /* LRU: head is the most recent */
	struct dnscache_key key;
	uint32_t hash;
	uint64_t stored_ms, expires_ms;
	size_t len;
	uint8_t msg[];
};

struct dnscache {
	struct centry *b[BUCKETS];
	struct centry *head, *tail;
	unsigned n, max_n;
	size_t bytes, max_bytes;
};

static uint32_t key_hash(const struct dnscache_key *k)
{
	return dnsmsg_name_hash(&k->name, true) ^ ((uint32_t)k->type << 16 | k->klass) ^ (k->dnssec_ok ? 0x9e37u : 0);
}

static bool key_eq(const struct dnscache_key *a, const struct dnscache_key *b)
{
	return a->type == b->type && a->klass == b->klass && a->dnssec_ok == b->dnssec_ok &&
	       dnsmsg_name_eq(&a->name, &b->name);
}

struct dnscache *dnscache_new(unsigned max_entries, size_t max_bytes)
{
	struct dnscache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->max_n = max_entries ? max_entries : 1;
	c->max_bytes = max_bytes;
	return c;
}

static void lru_unlink(struct dnscache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct dnscache *c, struct centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void entry_drop(struct dnscache *c, struct centry *e)
{
	struct centry **pp = &c->b[e->hash & (BUCKETS - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	c->n--;
	c->bytes -= sizeof(*e) + e->len;
	free(e);
}

void dnscache_free(struct dnscache *c)
{
	if (!c)
		return;
	while (c->head)
		entry_drop(c, c->head);
	free(c);
}

static struct centry *lookup(struct dnscache *c, const struct dnscache_key *k, uint32_t h)
{
	for (struct centry *e = c->b[h & (BUCKETS - 1)]; e; e = e->hnext)
		if (e->hash == h && key_eq(&e->key, k))
			return e;
	return NULL;
}

int dnscache_put(struct dnscache *c, const struct dnscache_key *k, const uint8_t *msg, size_t len, uint32_t ttl,
		 uint64_t now_ms)
{
	uint32_t h = key_hash(k);
	struct centry *e = lookup(c, k, h);

	size_t need = sizeof(*e) + len; /* what an entry costs, bookkeeping included */

	if (need > c->max_bytes)
		return -E2BIG;
	if (e)
		entry_drop(c, e);
	while (c->tail && (c->n >= c->max_n || c->bytes + need > c->max_bytes))
		entry_drop(c, c->tail);
	if (!(e = malloc(sizeof(*e) + len)))
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->hash = h;
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)MIN(ttl, DNSCACHE_TTL_MAX) * 1000;
	e->len = len;
	memcpy(e->msg, msg, len);
	e->hnext = c->b[h & (BUCKETS - 1)];
	c->b[h & (BUCKETS - 1)] = e;
	lru_push(c, e);
	c->n++;
	c->bytes += need;
	return 0;
}

const uint8_t *dnscache_get(struct dnscache *c, const struct dnscache_key *k, uint64_t now_ms, size_t *len,
			    uint32_t *age)
{
	struct centry *e = lookup(c, k, key_hash(k));

	if (!e)
		return NULL;
	if (now_ms >= e->expires_ms) {
		entry_drop(c, e);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	*len = e->len;
	*age = (uint32_t)((now_ms - e->stored_ms) / 1000);
	return e->msg;
}

unsigned dnscache_entries(const struct dnscache *c)
{
	return c ? c->n : 0;
}

size_t dnscache_bytes(const struct dnscache *c)
{
	return c ? c->bytes : 0;
}
