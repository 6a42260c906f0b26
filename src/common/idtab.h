/* An intrusive chained hash table keyed by a u32 id (a stream's, a UDP
 * flow's): the node sits in the owner's struct, the bucket array is the
 * owner's too (2^bits pointers, zeroed).  Every operation walks one chain.
 * Ids must be unique in a table: idtab_add does not check. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct idtab_node {
	struct idtab_node *next;
	uint32_t id;
};

struct idtab {
	struct idtab_node **b;
	unsigned bits;
};

static inline void idtab_init(struct idtab *t, struct idtab_node **buckets, unsigned bits)
{
	t->b = buckets;
	t->bits = bits;
}

static inline struct idtab_node **idtab_bucket(const struct idtab *t, uint32_t id)
{
	return &t->b[(id * 2654435761u) >> (32 - t->bits)]; /* Fibonacci hashing */
}

static inline struct idtab_node *idtab_find(const struct idtab *t, uint32_t id)
{
	struct idtab_node *n = *idtab_bucket(t, id);

	while (n && n->id != id)
		n = n->next;
	return n;
}

static inline void idtab_add(struct idtab *t, struct idtab_node *n, uint32_t id)
{
	struct idtab_node **b = idtab_bucket(t, id);

	n->id = id;
	n->next = *b;
	*b = n;
}

/* Takes n out; a node not in the table is left alone. */
static inline void idtab_del(struct idtab *t, struct idtab_node *n)
{
	struct idtab_node **p = idtab_bucket(t, n->id);

	while (*p && *p != n)
		p = &(*p)->next;
	if (*p)
		*p = n->next;
	n->next = NULL;
}
