/* The hairpin NAT table (nat.h).
 *
 * Entries live in one array that grows by doubling up to max_entries;
 * removed entries go on a free list, so a flow costs an allocation only
 * when the array grows.  Two chained hash tables of uint32 indices (app key
 * -> entry, tuple -> entry) share the entries; their bucket arrays double
 * when the count passes the bucket count (load factor <= 1).  The hash is
 * SipHash-1-3 keyed from the seed, so a peer choosing ports cannot aim at
 * one chain.
 *
 * Tuples: index i of [0, space) is address base + i % n_addrs, port
 * NAT_PORT_MIN + i / n_addrs (consecutive flows spread over the addresses).
 * A cursor starts at a random index and only moves forward, skipping tuples
 * in use; so a tuple comes back only after the cursor has been round the
 * whole space.  When it wraps, tuples are handed out again in the same
 * order, live ones still skipped: with 64 addresses, 4,128,768 tuples, that
 * is after ~7 minutes at 10,000 new flows/s, far beyond TIME_WAIT (60 s).
 * Across daemon restarts the random start makes a collision with tuples
 * still in TIME_WAIT as likely as (tuples used in the last minute)/space. */
#include "daemon/nat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX
#define NAT_PORTS (65536u - NAT_PORT_MIN)
#define NAT_INIT_CAP 64u

struct nat_entry {
	struct nat_key key;
	struct nat_tuple tuple;
	uint32_t next_app; /* app chain; free list link when free */
	uint32_t next_tup;
	void *data;
};

struct nat_table {
	struct nat_entry *e;
	uint32_t cap;       /* entries allocated */
	uint32_t used;      /* entries [0, used) were handed out at least once */
	uint32_t free_head; /* free list through next_app */
	uint32_t count;
	uint32_t max;       /* min(max_entries, space, NIL - 1) */
	uint32_t *app_b, *tup_b; /* one allocation: tup_b = app_b + nb */
	uint32_t nb;        /* buckets per table, a power of two */
	uint32_t base, n_addrs, stride;
	uint64_t space, cursor;
	uint64_t k0, k1;    /* hash secret */
};

/* ---- hashing ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sipround(uint64_t v[4])
{
	v[0] += v[1], v[1] = rotl64(v[1], 13), v[1] ^= v[0], v[0] = rotl64(v[0], 32);
	v[2] += v[3], v[3] = rotl64(v[3], 16), v[3] ^= v[2];
	v[0] += v[3], v[3] = rotl64(v[3], 21), v[3] ^= v[0];
	v[2] += v[1], v[1] = rotl64(v[1], 17), v[1] ^= v[2], v[2] = rotl64(v[2], 32);
}

static void sip_absorb(uint64_t v[4], uint64_t m)
{
	v[3] ^= m;
	sipround(v);
	v[0] ^= m;
}

/* SipHash-1-3 of the 16-byte message (m0, m1). */
static uint64_t siphash13(const struct nat_table *t, uint64_t m0, uint64_t m1)
{
	uint64_t v[4] = {t->k0 ^ 0x736f6d6570736575ull, t->k1 ^ 0x646f72616e646f6dull,
			 t->k0 ^ 0x6c7967656e657261ull, t->k1 ^ 0x7465646279746573ull};

	sip_absorb(v, m0);
	sip_absorb(v, m1);
	sip_absorb(v, 16ull << 56);
	v[2] ^= 0xff;
	sipround(v);
	sipround(v);
	sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint32_t hash_app(const struct nat_table *t, const struct nat_key *k)
{
	uint64_t m0 = (uint64_t)k->src << 32 | k->dst;
	uint64_t m1 = (uint64_t)k->sport << 16 | k->dport;

	return (uint32_t)siphash13(t, m0, m1) & (t->nb - 1);
}

static uint32_t hash_tup(const struct nat_table *t, uint32_t addr, uint16_t port)
{
	/* m1 = 1 keeps the two key spaces apart. */
	return (uint32_t)siphash13(t, (uint64_t)addr << 16 | port, 1) & (t->nb - 1);
}

static bool key_eq(const struct nat_key *a, const struct nat_key *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
	       a->dport == b->dport;
}

/* ---- lookup ---- */

static uint32_t find_app(const struct nat_table *t, const struct nat_key *k)
{
	uint32_t i = t->app_b[hash_app(t, k)];

	while (i != NIL && !key_eq(&t->e[i].key, k))
		i = t->e[i].next_app;
	return i;
}

static uint32_t find_tup(const struct nat_table *t, uint32_t addr, uint16_t port)
{
	uint32_t i = t->tup_b[hash_tup(t, addr, port)];

	while (i != NIL && (t->e[i].tuple.addr != addr || t->e[i].tuple.port != port))
		i = t->e[i].next_tup;
	return i;
}

void *nat_lookup_app(const struct nat_table *t, const struct nat_key *app)
{
	uint32_t i = find_app(t, app);

	return i == NIL ? NULL : t->e[i].data;
}

void *nat_lookup_tuple(const struct nat_table *t, uint32_t addr, uint16_t port)
{
	uint32_t i;

	if (!nat_owns_addr(t, addr) || port < NAT_PORT_MIN)
		return NULL;
	i = find_tup(t, addr, port);
	return i == NIL ? NULL : t->e[i].data;
}

bool nat_owns_addr(const struct nat_table *t, uint32_t addr)
{
	uint32_t i = addr - t->base;

	return i % t->stride == 0 && i / t->stride < t->n_addrs;
}

uint32_t nat_count(const struct nat_table *t)
{
	return t->count;
}

size_t nat_mem_bytes(const struct nat_table *t)
{
	return sizeof(*t) + (size_t)t->cap * sizeof(*t->e) + 2 * (size_t)t->nb * sizeof(uint32_t);
}

/* ---- growth ---- */

static void link_entry(struct nat_table *t, uint32_t i)
{
	struct nat_entry *e = &t->e[i];
	uint32_t ha = hash_app(t, &e->key), ht = hash_tup(t, e->tuple.addr, e->tuple.port);

	e->next_app = t->app_b[ha];
	t->app_b[ha] = i;
	e->next_tup = t->tup_b[ht];
	t->tup_b[ht] = i;
}

/* Both bucket arrays, nb each, in one allocation; 0 or -ENOMEM. */
static int buckets_new(struct nat_table *t, uint32_t nb)
{
	uint32_t *b = malloc(2 * (size_t)nb * sizeof(*b));

	if (!b)
		return -ENOMEM;
	memset(b, 0xff, 2 * (size_t)nb * sizeof(*b)); /* all NIL */
	t->app_b = b;
	t->tup_b = b + nb;
	t->nb = nb;
	return 0;
}

/* Walks the old app chains (exactly the live entries) into new buckets. */
static int buckets_grow(struct nat_table *t)
{
	uint32_t *old = t->app_b, onb = t->nb;

	if (buckets_new(t, onb * 2) < 0)
		return -ENOMEM;
	for (uint32_t b = 0; b < onb; b++) {
		for (uint32_t i = old[b], next; i != NIL; i = next) {
			next = t->e[i].next_app;
			link_entry(t, i);
		}
	}
	free(old);
	return 0;
}

static int entries_grow(struct nat_table *t)
{
	uint32_t cap = t->cap > t->max / 2 ? t->max : t->cap * 2;
	struct nat_entry *e = reallocarray(t->e, cap, sizeof(*e));

	if (!e)
		return -ENOMEM;
	t->e = e;
	t->cap = cap;
	return 0;
}

/* Room for one more entry: 0 or -ENOMEM. */
static int reserve_one(struct nat_table *t)
{
	int r;

	if (t->free_head == NIL && t->used == t->cap && (r = entries_grow(t)) < 0)
		return r;
	if (t->count + 1 > t->nb && t->nb < (1u << 31) && (r = buckets_grow(t)) < 0)
		return r;
	return 0;
}

/* ---- table ---- */

struct nat_table *nat_new(uint32_t max_entries, uint32_t base, uint32_t n_addrs, uint32_t stride,
			  uint64_t seed)
{
	struct nat_table *t;
	uint64_t s = seed;

	if (n_addrs == 0 || max_entries == 0 || stride == 0 ||
	    base + (uint64_t)(n_addrs - 1) * stride >= (1ull << 32))
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->base = base;
	t->n_addrs = n_addrs;
	t->stride = stride;
	t->space = (uint64_t)n_addrs * NAT_PORTS;
	t->max = max_entries;
	if (t->max > t->space)
		t->max = (uint32_t)t->space;
	if (t->max > NIL - 1)
		t->max = NIL - 1;
	t->k0 = splitmix64(&s);
	t->k1 = splitmix64(&s);
	t->cursor = splitmix64(&s) % t->space;
	t->free_head = NIL;
	t->cap = t->max < NAT_INIT_CAP ? t->max : NAT_INIT_CAP;
	t->e = calloc(t->cap, sizeof(*t->e));
	if (!t->e || buckets_new(t, NAT_INIT_CAP) < 0) {
		nat_free(t);
		return NULL;
	}
	return t;
}

void nat_free(struct nat_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->app_b); /* and tup_b */
	explicit_bzero(t, sizeof(*t)); /* the hash secret */
	free(t);
}

static struct nat_tuple tuple_at(const struct nat_table *t, uint64_t i)
{
	struct nat_tuple tu = {
		.addr = t->base + (uint32_t)(i % t->n_addrs) * t->stride,
		.port = (uint16_t)(NAT_PORT_MIN + i / t->n_addrs),
	};
	return tu;
}

/* The next tuple not in use.  Ends: count < max <= space, so one is free;
 * the walk is as long as the run of live tuples it skips. */
static struct nat_tuple next_tuple(struct nat_table *t)
{
	for (;;) {
		struct nat_tuple tu = tuple_at(t, t->cursor);

		if (++t->cursor == t->space)
			t->cursor = 0;
		if (find_tup(t, tu.addr, tu.port) == NIL)
			return tu;
	}
}

static uint32_t entry_alloc(struct nat_table *t)
{
	uint32_t i = t->free_head;

	if (i != NIL)
		t->free_head = t->e[i].next_app;
	else
		i = t->used++;
	return i;
}

int nat_insert(struct nat_table *t, const struct nat_key *app, void *data, struct nat_tuple *out)
{
	struct nat_entry *e;
	uint32_t i;
	int r;

	if (find_app(t, app) != NIL)
		return -EEXIST;
	if (t->count >= t->max)
		return -ENOSPC;
	r = reserve_one(t);
	if (r < 0)
		return r;
	i = entry_alloc(t);
	e = &t->e[i];
	e->key = *app;
	e->tuple = next_tuple(t);
	e->data = data;
	link_entry(t, i);
	t->count++;
	*out = e->tuple;
	return 0;
}

/* Unlinks entry i from the chain that starts at *link. */
static void unlink_tup(struct nat_table *t, uint32_t i)
{
	uint32_t *link = &t->tup_b[hash_tup(t, t->e[i].tuple.addr, t->e[i].tuple.port)];

	while (*link != i)
		link = &t->e[*link].next_tup;
	*link = t->e[i].next_tup;
}

void *nat_remove(struct nat_table *t, const struct nat_key *app)
{
	uint32_t *link = &t->app_b[hash_app(t, app)];
	uint32_t i;
	void *data;

	while (*link != NIL && !key_eq(&t->e[*link].key, app))
		link = &t->e[*link].next_app;
	i = *link;
	if (i == NIL)
		return NULL;
	*link = t->e[i].next_app;
	unlink_tup(t, i);
	data = t->e[i].data;
	memset(&t->e[i], 0, sizeof(t->e[i]));
	t->e[i].next_app = t->free_head;
	t->free_head = i;
	t->count--;
	return data;
}
