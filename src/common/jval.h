/* A JSON value tree (RFC 8259) for documents a program edits and writes
 * back: Kubernetes objects and JSON patches (RFC 6902, jval_patch) for
 * `subway inject` and the lab's workloads.  (jsonget.h reads a few values
 * out of a document without building anything; use it when that is all.)
 *
 * Objects keep their members in order; numbers keep their text; strings
 * are UTF-8 bytes with the escapes decoded (\u0000 is refused, so each is
 * also a C string).  Parsing is strict and bounded: JVAL_DEPTH levels,
 * JVAL_ITEMS members or elements in one object or array, no duplicate
 * keys, valid UTF-8.
 *
 * Ownership: every jval_new* and jval_parse result belongs to the caller
 * (jval_free).  jval_set, jval_push and jval_insert take the value they
 * are given, also when they fail (it is freed then), and accept NULL as a
 * failed allocation: builders stay straight-line code. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define JVAL_DEPTH 64
#define JVAL_ITEMS 4096

enum jval_type { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT };

struct jval {
	enum jval_type type;
	bool b;             /* JV_BOOL */
	char *s;            /* JV_STRING: the bytes; JV_NUMBER: the text */
	size_t len;         /* of s */
	size_t n, cap;      /* arrays and objects: items */
	struct jval **items;
	char **keys;        /* objects: items[i]'s name */
};

/* The value in text[0..len), or NULL with err saying where and why. */
struct jval *jval_parse(const char *text, size_t len, char *err, size_t errlen);
void jval_free(struct jval *v);
struct jval *jval_dup(const struct jval *v); /* NULL: no memory */

/* The text of v: indent 0 is compact (no spaces at all); indent N puts
 * every member and element on its own line, N spaces deeper per level
 * (Python's json.dumps(indent=N, ensure_ascii=False)).  A NUL-terminated
 * string of *len bytes (len may be NULL) to free(), or NULL: no memory. */
char *jval_encode(const struct jval *v, int indent, size_t *len);

/* Looking things up: NULL when v is not of that type or has no such item. */
struct jval *jval_get(const struct jval *obj, const char *key);
struct jval *jval_at(const struct jval *v, size_t i); /* array element or object member */
const char *jval_str(const struct jval *v);           /* a string's bytes */
/* RFC 6901: "" is root itself, "/a/0/b~1c" walks down ("~1" is '/', "~0" '~'). */
struct jval *jval_ptr(const struct jval *root, const char *ptr);
/* Structural equality; numbers by value. */
bool jval_equal(const struct jval *a, const struct jval *b);

/* Building. */
struct jval *jval_new(enum jval_type type); /* null, false, 0, "", [] or {} */
struct jval *jval_new_str(const char *s);
struct jval *jval_new_strn(const char *s, size_t n);
struct jval *jval_new_int(long long v);
struct jval *jval_new_bool(bool b);
/* obj[key] = v: replaces a member of that name in its place, else
 * appends.  0, -EINVAL (obj not an object) or -ENOMEM. */
int jval_set(struct jval *obj, const char *key, struct jval *v);
int jval_push(struct jval *arr, struct jval *v);
int jval_insert(struct jval *arr, size_t i, struct jval *v); /* i <= n */
/* Removes item i (array element or object member) and returns it; NULL
 * if there is none. */
struct jval *jval_take(struct jval *v, size_t i);
/* The index of obj's member key, or -1. */
long jval_index(const struct jval *obj, const char *key);

/* Applies a JSON patch (RFC 6902: add, remove, replace, move, copy,
 * test) to *doc, all or nothing: on success *doc is the new document (the
 * old one freed); on failure *doc is untouched and err names the
 * operation and why.  0, -EINVAL (a bad patch or a failed operation) or
 * -ENOMEM. */
int jval_patch(struct jval **doc, const struct jval *patch, char *err, size_t errlen);
