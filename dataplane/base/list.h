/* Intrusive doubly linked lists (a node embedded in its owner), as in the Linux kernel:
 * O(1) unlink without a search, no allocation to queue something. */
#ifndef DURO_BASE_LIST_H
#define DURO_BASE_LIST_H

#include <stddef.h>

struct list_node {
	struct list_node *prev, *next;
};

#define LIST_CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void list_init(struct list_node *head) { head->prev = head->next = head; }
static inline int list_empty(const struct list_node *head) { return head->next == head; }
static inline int list_linked(const struct list_node *n) { return n->next != NULL && n->next != n; }

static inline void list_add_tail(struct list_node *head, struct list_node *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}

#endif
