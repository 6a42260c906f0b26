/* Bounds-checked reading and writing of big-endian wire data, in the
 * manner of OpenSSH's sshbuf: read every field in one chained sequence,
 * then test the sticky error flag once.
 *
 * Reader: a failed read (not enough bytes, bad string) sets c->err, reads
 * as zero (or an empty string) and leaves the position where it was; every
 * read after that fails too.  The cursor borrows the buffer; it never
 * allocates.
 * Writer: a write past cap sets w->err and writes nothing; a string that
 * does not fit its wire form sets w->inval; every write after either is
 * ignored. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cursor {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err;
};

struct wcursor {
	uint8_t *p;
	size_t cap;
	size_t off;
	bool err;   /* ran out of room */
	bool inval; /* a value cannot be encoded */
};

void cursor_init(struct cursor *c, const void *p, size_t len);
size_t cursor_remaining(const struct cursor *c); /* 0 once err is set */
/* Marks the cursor failed (for range checks done by the caller). */
void cursor_fail(struct cursor *c);
/* 0 when no read failed and every byte was consumed, else -EBADMSG. */
int cursor_end(const struct cursor *c);

uint8_t cursor_u8(struct cursor *c);
uint16_t cursor_u16(struct cursor *c);
uint32_t cursor_u32(struct cursor *c);
uint64_t cursor_u64(struct cursor *c);
/* Copies n bytes into out (zeroed on failure). */
void cursor_bytes(struct cursor *c, void *out, size_t n);
/* Returns a pointer to the next n bytes of the input and skips them, or
 * NULL on failure.  n == 0 returns a valid, non-dereferenceable pointer. */
const uint8_t *cursor_ref(struct cursor *c, size_t n);
/* A field of exactly n bytes holding a string padded with NULs: it must
 * contain a NUL and nothing but NULs after the first one.  out (size >= n)
 * gets the NUL-terminated string. */
void cursor_str_fixed(struct cursor *c, char *out, size_t n);
/* A u8 length then that many bytes, no NUL among them; the length must be
 * < size.  out gets the NUL-terminated string ("" on failure). */
void cursor_str8(struct cursor *c, char *out, size_t size);

void wcursor_init(struct wcursor *w, void *p, size_t cap);
/* Bytes written so far; -EINVAL if a value could not be encoded, else
 * -ENOSPC if a write did not fit. */
ssize_t wcursor_result(const struct wcursor *w);

void wcursor_u8(struct wcursor *w, uint8_t v);
void wcursor_u16(struct wcursor *w, uint16_t v);
void wcursor_u32(struct wcursor *w, uint32_t v);
void wcursor_u64(struct wcursor *w, uint64_t v);
void wcursor_bytes(struct wcursor *w, const void *p, size_t n);
/* s padded with NULs to exactly n bytes; strlen(s) < n, else inval. */
void wcursor_str_fixed(struct wcursor *w, const char *s, size_t n);
/* u8 length then the bytes of s; strlen(s) <= 255, else inval. */
void wcursor_str8(struct wcursor *w, const char *s);
