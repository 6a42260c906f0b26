/* Unit tests for common/loop.c's defers: work queued during a wakeup runs
 * once at its end, after the handlers; a defer queued by a deferred
 * function waits for the next wakeup, which does not sleep for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"

static struct {
	struct loop *l;
	struct loop_defer a, b, c;
	struct loop_timer stop;
	int pipe[2];
	char order[32];
	int n, handler_calls, requeue;
} T;

static void note(char c)
{
	if (T.n < (int)sizeof(T.order) - 1)
		T.order[T.n++] = c;
}

static void on_stop(struct loop *l, struct loop_timer *t)
{
	(void)t;
	loop_stop(l);
}

static void deferred(struct loop *l, struct loop_defer *d)
{
	(void)l;
	note(*(const char *)d->arg);
	if (d == &T.a && T.requeue-- > 0)
		loop_defer(T.l, &T.a, deferred, "a"); /* the next wakeup's */
	if (d == &T.a && T.requeue == -5)
		loop_defer_cancel(T.l, &T.c); /* another one, still queued */
}

/* A readable pipe: its handler queues the defers (twice each). */
static void on_read(struct loop *l, int fd, uint32_t events, void *arg)
{
	char c;

	(void)l;
	(void)events;
	(void)arg;
	if (read(fd, &c, 1) == 1)
		note('h');
	T.handler_calls++;
	loop_defer(T.l, &T.a, deferred, "a");
	loop_defer(T.l, &T.b, deferred, "b");
	loop_defer(T.l, &T.a, deferred, "a");
	loop_defer(T.l, &T.c, deferred, "c");
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	T.l = loop_new();
	assert_non_null(T.l);
	assert_int_equal(pipe(T.pipe), 0);
	assert_int_equal(loop_add(T.l, T.pipe[0], LOOP_IN, on_read, NULL), 0);
	loop_timer_arm(T.l, &T.stop, 200, on_stop, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	loop_del(T.l, T.pipe[0]);
	close(T.pipe[0]);
	close(T.pipe[1]);
	loop_free(T.l);
	return 0;
}

static void test_once_after_handlers(void **state)
{
	(void)state;
	assert_int_equal(write(T.pipe[1], "x", 1), 1);
	assert_int_equal(loop_run(T.l), 0);
	/* the handler first; then each defer once, oldest first */
	assert_string_equal(T.order, "habc");
	assert_false(T.a.queued || T.b.queued || T.c.queued);
}

static void test_requeued_runs_next_wakeup(void **state)
{
	(void)state;
	T.requeue = 2;
	assert_int_equal(write(T.pipe[1], "x", 1), 1);
	assert_int_equal(loop_run(T.l), 0);
	/* a queued itself again twice: once per later wakeup, not in a loop */
	assert_string_equal(T.order, "habcaa");
	assert_int_equal(T.handler_calls, 1);
}

static void test_cancel(void **state)
{
	(void)state;
	assert_int_equal(write(T.pipe[1], "x", 1), 1);
	T.requeue = -4; /* a's run cancels c, queued after it */
	assert_int_equal(loop_run(T.l), 0);
	assert_string_equal(T.order, "hab");
	assert_false(T.c.queued);
	loop_defer(T.l, &T.b, deferred, "b");
	loop_defer_cancel(T.l, &T.b);
	loop_defer_cancel(T.l, &T.b); /* twice: nothing */
	loop_timer_arm(T.l, &T.stop, 20, on_stop, NULL);
	assert_int_equal(loop_run(T.l), 0);
	assert_string_equal(T.order, "hab");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_once_after_handlers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requeued_runs_next_wakeup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
