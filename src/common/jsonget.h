/* Reading a few values out of a JSON document by path, e.g. the daemon's
 * `status` for `subway doctor`.  Pure and bounded: the document is
 * validated as a whole (RFC 8259 syntax, nesting at most JSONGET_DEPTH),
 * nothing is allocated, and a path names object keys and array indices
 * separated by dots ("cluster.nodes", "dns.mode", "items.0.name").  Keys
 * containing dots cannot be named, nor keys of digits inside arrays. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONGET_DEPTH 32

enum jsonget_type { JG_NULL = 1, JG_BOOL, JG_NUMBER, JG_STRING, JG_ARRAY, JG_OBJECT };

/* 0 if doc is one valid JSON value (surrounded by whitespace at most),
 * else -EBADMSG. */
int jsonget_valid(const char *doc, size_t len);
/* The type of the value at path, or 0 when doc is invalid or has no such
 * value.  The empty path names the document itself. */
enum jsonget_type jsonget_type(const char *doc, size_t len, const char *path);
/* A string, unescaped into out (NUL-terminated; \u escapes outside ASCII
 * become '?').  0, -ENOENT (absent or not a string; also for an invalid
 * document), -ENOSPC (out too small: out holds a truncated prefix). */
int jsonget_str(const char *doc, size_t len, const char *path, char *out, size_t outlen);
/* true/false.  0 or -ENOENT. */
int jsonget_bool(const char *doc, size_t len, const char *path, bool *out);
/* A non-negative integer that fits 64 bits.  0 or -ENOENT. */
int jsonget_u64(const char *doc, size_t len, const char *path, uint64_t *out);
/* The strings of an array (other elements are skipped), each up to
 * width - 1 bytes (longer ones are truncated).  Returns how many were
 * stored (<= max), or -ENOENT. */
int jsonget_strs(const char *doc, size_t len, const char *path, char *out, size_t width, int max);
