/* An intrusive circular doubly linked list, the one list of the code base.
 *
 * The head and every node are a struct list embedded in the owner's
 * struct; list_entry() gets the owner back.  A head must be list_init()ed;
 * a node needs no setup: a zeroed node (calloc) or one taken off with
 * list_del() is "not linked", and list_del() on it is a no-op, so an
 * owner's free path can always call it. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct list {
	struct list *prev, *next;
};

#define list_entry(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))
/* The first (or last) entry of a non-empty list. */
#define list_first(h, type, member) list_entry((h)->next, type, member)
#define list_last(h, type, member) list_entry((h)->prev, type, member)
/* Iterates over the owners: pos is a pointer to the owner's type.  The
 * body must not list_del() pos; see list_for_each_safe. */
#define list_for_each_entry(pos, h, member) \
	for ((pos) = list_entry((h)->next, __typeof__(*(pos)), member); &(pos)->member != (h); \
	     (pos) = list_entry((pos)->member.next, __typeof__(*(pos)), member))
/* Iterates where the body may list_del() (and free) the current node. */
#define list_for_each_safe(pos, tmp, h) \
	for ((pos) = (h)->next, (tmp) = (pos)->next; (pos) != (h); (pos) = (tmp), (tmp) = (pos)->next)

static inline void list_init(struct list *h) { h->prev = h->next = h; }
static inline bool list_empty(const struct list *h) { return h->next == h; }
/* True if n sits in some list. */
static inline bool list_linked(const struct list *n) { return n->next && n->next != n; }

static inline void list_insert_(struct list *n, struct list *prev, struct list *next)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

static inline void list_add(struct list *h, struct list *n) { list_insert_(n, h, h->next); }
static inline void list_add_tail(struct list *h, struct list *n) { list_insert_(n, h->prev, h); }
/* Moves every entry of src to the end of h, in order; src is left empty. */
static inline void list_splice_tail(struct list *h, struct list *src)
{
	if (list_empty(src))
		return;
	src->next->prev = h->prev;
	h->prev->next = src->next;
	src->prev->next = h;
	h->prev = src->prev;
	list_init(src);
}

static inline void list_del(struct list *n)
{
	if (!list_linked(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
