/* DNS answer cache: a hash table of chains plus an LRU list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/util.h"
#include "dns/dnscache.h"

#define BUCKETS 1024 /* power of two */

struct centry {
	struct list hlink; /* its bucket */
	struct list lru;   /* c->lru, the most recent first */
	struct dnscache_key key;
	uint32_t hash;
	uint64_t stored_ms, expires_ms;
	size_t len;
	uint8_t msg[];
};

struct dnscache {
	struct list b[BUCKETS];
	struct list lru;
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
	for (int i = 0; i < BUCKETS; i++)
		list_init(&c->b[i]);
	list_init(&c->lru);
	c->max_n = max_entries ? max_entries : 1;
	c->max_bytes = max_bytes;
	return c;
}

static void entry_drop(struct dnscache *c, struct centry *e)
{
	list_del(&e->hlink);
	list_del(&e->lru);
	c->n--;
	c->bytes -= sizeof(*e) + e->len;
	free(e);
}

void dnscache_free(struct dnscache *c)
{
	if (!c)
		return;
	while (!list_empty(&c->lru))
		entry_drop(c, list_first(&c->lru, struct centry, lru));
	free(c);
}

static struct centry *lookup(struct dnscache *c, const struct dnscache_key *k, uint32_t h)
{
	struct centry *e;

	list_for_each_entry(e, &c->b[h & (BUCKETS - 1)], hlink)
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
	while (!list_empty(&c->lru) && (c->n >= c->max_n || c->bytes + need > c->max_bytes))
		entry_drop(c, list_last(&c->lru, struct centry, lru));
	if (!(e = malloc(sizeof(*e) + len)))
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->hash = h;
	e->stored_ms = now_ms;
	e->expires_ms = now_ms + (uint64_t)MIN(ttl, DNSCACHE_TTL_MAX) * 1000;
	e->len = len;
	memcpy(e->msg, msg, len);
	list_add(&c->b[h & (BUCKETS - 1)], &e->hlink);
	list_add(&c->lru, &e->lru);
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
	list_del(&e->lru);
	list_add(&c->lru, &e->lru);
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
