/* Unit tests for the bounds-checked cursor (src/common/cursor.c), the one
 * reader of untrusted bytes: frames, DNS messages, packets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cursor.h"

static void test_cursor_reader(void **state)
{
	const uint8_t b[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 'a', 'b', 0, 0, 2, 'h', 'i' };
	struct cursor c;
	char s[8];

	(void)state;
	cursor_init(&c, b, sizeof(b));
	assert_int_equal(cursor_u8(&c), 1);
	assert_int_equal(cursor_u64(&c), 0x0203040506070809ull);
	cursor_str_fixed(&c, s, 4);
	assert_string_equal(s, "ab");
	cursor_str8(&c, s, sizeof(s));
	assert_string_equal(s, "hi");
	assert_int_equal(cursor_end(&c), 0);
	assert_int_equal(cursor_remaining(&c), 0);

	/* error sticks, and failed reads read as zero */
	cursor_init(&c, b, 3);
	assert_int_equal(cursor_u32(&c), 0);
	assert_true(c.err);
	assert_int_equal(cursor_u8(&c), 0);
	assert_int_equal(cursor_remaining(&c), 0);
	assert_int_equal(cursor_end(&c), -EBADMSG);

	/* fixed strings must be NUL-padded */
	const uint8_t f1[] = { 'a', 'b', 'c', 'd' }, f2[] = { 'a', 0, 'c', 0 };
	cursor_init(&c, f1, sizeof(f1));
	cursor_str_fixed(&c, s, sizeof(f1));
	assert_true(c.err);
	assert_string_equal(s, "");
	cursor_init(&c, f2, sizeof(f2));
	cursor_str_fixed(&c, s, sizeof(f2));
	assert_true(c.err);

	/* str8: length >= size, and embedded NUL */
	const uint8_t s1[] = { 3, 'a', 'b', 'c' }, s2[] = { 2, 'a', 0 };
	cursor_init(&c, s1, sizeof(s1));
	cursor_str8(&c, s, 3);
	assert_true(c.err);
	cursor_init(&c, s1, sizeof(s1));
	cursor_str8(&c, s, 4);
	assert_false(c.err);
	cursor_init(&c, s2, sizeof(s2));
	cursor_str8(&c, s, sizeof(s));
	assert_true(c.err);

	/* refs point into the input; empty ones too, even of an empty buffer */
	cursor_init(&c, b, sizeof(b));
	assert_ptr_equal(cursor_ref(&c, 2), b);
	assert_ptr_equal(cursor_ref(&c, 0), b + 2);
	assert_null(cursor_ref(&c, sizeof(b)));
	cursor_init(&c, NULL, 0);
	assert_non_null(cursor_ref(&c, 0));
	assert_int_equal(cursor_end(&c), 0);
	cursor_init(&c, b, SIZE_MAX - 1); /* huge lengths do not wrap the bounds check */
	c.off = 4;
	assert_null(cursor_ref(&c, SIZE_MAX - 2));
}

/* A sub-cursor reads a fixed-size header: it stops at its own end, and
 * one past what is there fails both. */
static void test_cursor_sub_skip(void **state)
{
	const uint8_t b[] = { 1, 2, 3, 4, 5, 6 };
	struct cursor c, h;

	(void)state;
	cursor_init(&c, b, sizeof(b));
	h = cursor_sub(&c, 4);
	assert_int_equal(cursor_u16(&h), 0x0102);
	cursor_skip(&h, 1);
	assert_int_equal(cursor_remaining(&h), 1);
	assert_int_equal(cursor_u16(&h), 0); /* past the sub-cursor's end */
	assert_true(h.err);
	assert_false(c.err);
	assert_int_equal(cursor_u8(&c), 5);
	h = cursor_sub(&c, 2);
	assert_true(c.err && h.err);
	assert_int_equal(cursor_u8(&h), 0);
	assert_int_equal(cursor_remaining(&h), 0);
	assert_int_equal(cursor_u8(&c), 0); /* the parent's error sticks */

	cursor_init(&c, b, sizeof(b));
	cursor_skip(&c, 6);
	assert_int_equal(cursor_end(&c), 0);
	cursor_skip(&c, 1);
	assert_int_equal(cursor_end(&c), -EBADMSG);
	assert_null(cursor_ref(&c, 0)); /* even an empty read, once failed */
}

static void test_cursor_writer(void **state)
{
	uint8_t b[16];
	struct wcursor w;

	(void)state;
	wcursor_init(&w, b, sizeof(b));
	wcursor_u16(&w, 0x0102);
	wcursor_u64(&w, 0x030405060708090aull);
	wcursor_str8(&w, "xy");
	wcursor_str_fixed(&w, "z", 3);
	assert_int_equal(wcursor_result(&w), 16);
	const uint8_t want[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2, 'x', 'y', 'z', 0, 0 };
	assert_memory_equal(b, want, sizeof(want));
	wcursor_u8(&w, 1);
	assert_int_equal(wcursor_result(&w), -ENOSPC);

	wcursor_init(&w, b, 7); /* a u64 that does not fit writes nothing */
	wcursor_u64(&w, 1);
	assert_int_equal(wcursor_result(&w), -ENOSPC);
	assert_int_equal(w.off, 0);
	wcursor_init(&w, b, sizeof(b));
	wcursor_str_fixed(&w, "abc", 3);
	assert_int_equal(wcursor_result(&w), -EINVAL);
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	wcursor_init(&w, b, sizeof(b));
	wcursor_str8(&w, big);
	assert_int_equal(wcursor_result(&w), -EINVAL);
	wcursor_init(&w, NULL, 0);
	wcursor_bytes(&w, NULL, 0);
	assert_int_equal(wcursor_result(&w), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cursor_reader),
		cmocka_unit_test(test_cursor_sub_skip),
		cmocka_unit_test(test_cursor_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
