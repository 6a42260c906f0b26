/* Unit tests for src/daemon/guard.c: the loop guard's decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/guard.h"

#define A(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define T0 1000000000ull /* us: any start time */
#define NOWHERE A(10, 43, 250, 250)

static struct guard *g;

static int setup(void **state)
{
	(void)state;
	g = calloc(1, sizeof(*g));
	guard_init(g, true, 0x04);
	return g ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(g);
	return 0;
}

static enum guard_verdict begin(uint8_t proto, uint32_t dst, uint16_t port, uint64_t now, uint32_t load,
				bool *tracked)
{
	struct guard_attempt a = { .proto = proto, .dst = dst, .port = port, .now = now, .load = load };
	return guard_begin(g, &a, tracked);
}

static void test_source_and_mark(void **state)
{
	struct cidr4 pods = { A(10, 42, 0, 0), 16 };
	(void)state;
	guard_add_source(g, A(192, 168, 56, 10));
	guard_add_source(g, A(192, 168, 56, 10)); /* once is enough */
	guard_add_source(g, 0);                   /* ignored */
	guard_add_source_cidr(g, &pods);
	assert_int_equal(g->n_src, 1);
	assert_int_equal(guard_packet(g, A(192, 168, 56, 10), 0), GUARD_SOURCE);
	assert_int_equal(guard_packet(g, A(10, 42, 1, 7), 0), GUARD_SOURCE);
	assert_int_equal(guard_packet(g, A(198, 18, 0, 1), 0), GUARD_PASS);
	assert_int_equal(guard_packet(g, A(172, 31, 0, 2), 0), GUARD_PASS);
	/* The mark is the DSCP; the ECN bits may change on the way. */
	assert_int_equal(guard_packet(g, A(198, 18, 0, 1), 0x04), GUARD_MARK);
	assert_int_equal(guard_packet(g, A(198, 18, 0, 1), 0x07), GUARD_MARK);
	assert_int_equal(guard_packet(g, A(198, 18, 0, 1), 0x08), GUARD_PASS);
	assert_int_equal(guard_packet(g, A(198, 18, 0, 1), 0x02), GUARD_PASS);
	g->dscp_mark = 0; /* --tos 0: no mark layer */
	assert_int_equal(guard_packet(g, A(198, 18, 0, 1), 0x04), GUARD_PASS);
	guard_clear_sources(g);
	assert_int_equal(guard_packet(g, A(192, 168, 56, 10), 0), GUARD_PASS);
	for (uint32_t i = 1; i <= 100; i++)
		guard_add_source(g, i);
	assert_int_equal(g->n_src, GUARD_SOURCES_MAX);
}

static void test_disabled_passes_everything(void **state)
{
	bool tracked = true;
	(void)state;
	guard_init(g, false, 0x04);
	guard_add_source(g, A(192, 168, 56, 10));
	assert_int_equal(guard_packet(g, A(192, 168, 56, 10), 0x04), GUARD_PASS);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, T0 + (uint64_t)i * 100, (uint32_t)i, &tracked),
				 GUARD_PASS);
	assert_false(tracked);
	assert_null(guard_lookup(g, IPPROTO_TCP, NOWHERE, 80));
}

/* A chain: one new attempt every `gap` us, none answered; returns the
 * attempt number that was cut (0: none within max). */
static int run_chain(uint8_t proto, uint32_t dst, uint64_t t, uint64_t gap, int max)
{
	for (int k = 1; k <= max; k++) {
		bool tracked;
		if (begin(proto, dst, 80, t + (uint64_t)k * gap, (uint32_t)k - 1, &tracked) == GUARD_CHAIN)
			return k;
		assert_true(tracked);
	}
	return 0;
}

/* Another destination answers (the manager is not just behind). */
static void other_traffic_answered(uint64_t sent, uint64_t now)
{
	bool tracked;
	begin(IPPROTO_TCP, A(10, 43, 0, 20), 80, sent, 0, &tracked);
	guard_end(g, IPPROTO_TCP, A(10, 43, 0, 20), 80, GUARD_ANSWERED_OK, now, sent);
}

static void test_lone_tcp_chain_waits_longer(void **state)
{
	int k;
	(void)state;
	/* Nothing else answered: the manager may be behind a burst's new
	 * connections, so a TCP chain is cut only after GUARD_LONE_US. */
	k = run_chain(IPPROTO_TCP, NOWHERE, T0, 200, 1000);
	assert_true(k >= GUARD_LONE_US / 200 && k <= GUARD_LONE_US / 200 + 2);
	/* Something sent after the streak began was answered: W applies. */
	guard_init(g, true, 0x04);
	other_traffic_answered(T0 + 300, T0 + 400);
	k = run_chain(IPPROTO_TCP, NOWHERE, T0, 200, 1000);
	assert_true(k >= GUARD_CHAIN_MIN + 1 && k <= 25);
}

static void test_chain_cut_confirmed_remembered(void **state)
{
	const struct guard_dst *e;
	uint64_t t = T0;
	bool tracked;
	int k;
	(void)state;
	/* 200 us per link (the nat lab), other traffic answered meanwhile:
	 * W = 3 ms + 40 us per dial in flight. */
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t, 0, &tracked), GUARD_PASS);
	other_traffic_answered(t + 100, t + 150);
	k = run_chain(IPPROTO_TCP, NOWHERE, t, 200, 1000);
	assert_true(k >= GUARD_CHAIN_MIN && k <= 25);
	assert_int_equal(g->chains, 1);
	t += (uint64_t)k * 200;
	e = guard_lookup(g, IPPROTO_TCP, NOWHERE, 80);
	assert_non_null(e);
	assert_false(e->confirmed);
	/* The chain unwinds: the previous attempts fail "refused". */
	for (int i = 0; i < k; i++)
		guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_ANSWERED_REFUSED, t + (uint64_t)i * 100, T0);
	t += (uint64_t)k * 100;
	assert_true(e->confirmed);
	assert_int_equal(e->inflight, 0);
	/* Remembered: the app's next attempt passes, the first looped one is cut. */
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t += 1000, 0, &tracked), GUARD_PASS);
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t += 200, 1, &tracked), GUARD_CHAIN);
	t += 100;
	guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_ANSWERED_REFUSED, t, t);
	/* Other ports and addresses are not affected. */
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 81, t, 0, &tracked), GUARD_PASS);
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 81, t + 10, 1, &tracked), GUARD_PASS);
	/* A success forgets the loop (a service now owns the address). */
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t += 1000, 0, &tracked), GUARD_PASS);
	t += 100;
	guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_ANSWERED_OK, t, t);
	assert_int_equal(e->loop_until, 0);
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t += 10, 0, &tracked), GUARD_PASS);
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t += 10, 1, &tracked), GUARD_PASS);
}

static void test_memory_expires(void **state)
{
	uint64_t t = T0;
	bool tracked;
	int k;
	(void)state;
	k = run_chain(IPPROTO_TCP, NOWHERE, t, 200, 1000);
	assert_true(k > 0);
	t += (uint64_t)k * 200;
	guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_ANSWERED_REFUSED, t += 100, T0);
	for (int i = 2; i < k; i++)
		guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_NO_ANSWER, t, 0);
	t += GUARD_MEMORY_US + 1;
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t, 0, &tracked), GUARD_PASS);
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t + 200, 1, &tracked), GUARD_PASS);
}

static void test_unconfirmed_cut_is_not_remembered(void **state)
{
	uint64_t t = T0;
	bool tracked;
	int k;
	(void)state;
	/* 20 parallel-ish attempts to something that answers nothing at all
	 * (a black hole): cut once, but nothing refuses, so no memory. */
	k = run_chain(IPPROTO_TCP, NOWHERE, t, 300, 1000);
	assert_true(k > 0);
	t += (uint64_t)k * 300 + GUARD_CONFIRM_US + 1;
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, t, (uint32_t)k, &tracked), GUARD_PASS);
}

static void test_burst_is_never_cut(void **state)
{
	uint64_t t = T0;
	bool tracked;
	uint32_t inflight = 0;
	(void)state;
	/* 200 connections in 7 ms (an asyncio client), the first answer
	 * after 7 ms (the manager works through the burst first). */
	for (int i = 0; i < 200; i++) {
		assert_int_equal(begin(IPPROTO_TCP, A(10, 43, 0, 20), 80, t + (uint64_t)i * 35, inflight, &tracked),
				 GUARD_PASS);
		inflight++;
	}
	t += 7000;
	for (int i = 0; i < 200; i++)
		guard_end(g, IPPROTO_TCP, A(10, 43, 0, 20), 80, GUARD_ANSWERED_OK, t + (uint64_t)i * 20, T0);
	/* A fresh destination's burst while other traffic is answered: the
	 * load term covers its own delay. */
	inflight = 0;
	for (int i = 0; i < 200; i++) {
		uint64_t at = t + (uint64_t)i * 35;
		assert_int_equal(begin(IPPROTO_TCP, A(10, 42, 1, 2), 80, at, inflight, &tracked), GUARD_PASS);
		other_traffic_answered(at + 1, at + 2);
		inflight++;
	}
	/* Healthy now: a second, slower burst gets a wide window. */
	t += 10000;
	for (int i = 0; i < 400; i++)
		assert_int_equal(begin(IPPROTO_TCP, A(10, 43, 0, 20), 80, t + (uint64_t)i * 100, 0, &tracked),
				 GUARD_PASS);
	assert_int_equal(g->chains, 0);
}

static void test_attempts_behind_a_queued_one_do_not_count(void **state)
{
	uint32_t web = A(10, 43, 0, 20);
	bool tracked;
	(void)state;
	/* The first attempt waits for a pooled connection: the 999 after it
	 * cannot be links of a chain, whatever their timing. */
	assert_int_equal(begin(IPPROTO_TCP, web, 80, T0, 0, &tracked), GUARD_PASS);
	guard_queued(g, IPPROTO_TCP, web, 80);
	for (int i = 1; i < 1000; i++)
		assert_int_equal(begin(IPPROTO_TCP, web, 80, T0 + (uint64_t)i * 200, 0, &tracked), GUARD_PASS);
	assert_int_equal(guard_lookup(g, IPPROTO_TCP, web, 80)->inflight, 1000);
	/* Once it is sent, sequential attempts count again. */
	guard_sent(g, IPPROTO_TCP, web, 80, T0 + 500000);
	assert_int_equal(run_chain(IPPROTO_TCP, web, T0 + 1000000, 200, 1000) > 0, 1);
}

static void test_overflow(void **state)
{
	struct guard_attempt a = { .proto = IPPROTO_TCP, .dst = NOWHERE, .port = 80, .now = T0 };
	uint32_t web = A(10, 43, 0, 20);
	bool tracked;
	(void)state;
	/* Chains side by side filled the caps: the refused attempt was a link. */
	for (int i = 0; i < GUARD_OVERFLOW_MIN; i++)
		assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, a.now += 200, 0, &tracked), GUARD_PASS);
	assert_true(guard_overflow(g, &a));
	guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_ANSWERED_REFUSED, a.now + 100, T0);
	assert_true(guard_lookup(g, IPPROTO_TCP, NOWHERE, 80)->confirmed);
	/* Not a healthy destination, nor one with nothing in flight. */
	a.dst = web;
	for (int i = 0; i < 10; i++)
		begin(IPPROTO_TCP, web, 80, a.now += 10, 0, &tracked);
	guard_end(g, IPPROTO_TCP, web, 80, GUARD_ANSWERED_OK, a.now, T0);
	assert_false(guard_overflow(g, &a));
	a.dst = A(10, 43, 9, 9);
	assert_false(guard_overflow(g, &a));
}

static void test_slow_sequence_is_never_cut(void **state)
{
	bool tracked;
	(void)state;
	/* A UDP sender with a new socket every 100 ms to something that
	 * never answers (a metrics sink): far apart, never a chain. */
	for (int i = 0; i < 200; i++)
		assert_int_equal(begin(IPPROTO_UDP, A(10, 43, 0, 99), 8125, T0 + (uint64_t)i * 100000, 0, &tracked),
				 GUARD_PASS);
}

static void test_udp_chain_remembered_at_once(void **state)
{
	uint64_t t = T0;
	bool tracked;
	int k;
	(void)state;
	k = run_chain(IPPROTO_UDP, NOWHERE, t, 70, 2000);
	assert_true(k > 0);
	t += (uint64_t)k * 70;
	assert_int_equal(begin(IPPROTO_UDP, NOWHERE, 80, t + 10, 0, &tracked), GUARD_CHAIN);
	/* A reply forgets it. */
	guard_end(g, IPPROTO_UDP, NOWHERE, 80, GUARD_ANSWERED_OK, t + 20, T0);
	assert_int_equal(begin(IPPROTO_UDP, NOWHERE, 80, t + 30, 0, &tracked), GUARD_PASS);
}

static void test_window(void **state)
{
	(void)state;
	assert_int_equal(guard_window_us(g, 0), GUARD_WINDOW_MIN_US);
	assert_int_equal(guard_window_us(g, 100), GUARD_WINDOW_MIN_US + 100 * GUARD_LOAD_US);
	assert_int_equal(guard_window_us(g, 1000000), GUARD_WINDOW_MIN_US + GUARD_LOAD_MAX_US);
	guard_rtt_sample(g, 100000); /* a remote cluster, 100 ms away */
	assert_int_equal(g->srtt_us, 100000);
	assert_int_equal(guard_window_us(g, 0), 300000);
	/* One slow sample moves the mean by at most 4x/8. */
	guard_rtt_sample(g, 10000000);
	assert_int_equal(g->srtt_us, (7 * 100000 + 400000) / 8);
	guard_rtt_sample(g, 100000000);
	assert_true(guard_window_us(g, 0) <= GUARD_WINDOW_MAX_US);
}

static void test_table_bounded(void **state)
{
	bool tracked;
	int untracked = 0;
	(void)state;
	/* Far more destinations in flight than slots: the rest go untracked
	 * (still bounded by the daemon's caps), nothing is evicted in flight. */
	for (uint32_t i = 0; i < 3 * GUARD_SLOTS; i++) {
		assert_int_equal(begin(IPPROTO_TCP, A(10, 43, 0, 0) + i, 80, T0 + i, 0, &tracked), GUARD_PASS);
		untracked += !tracked;
	}
	assert_true(untracked >= 2 * GUARD_SLOTS);
	assert_int_equal(g->untracked, (uint64_t)untracked);
	/* Once they end, their slots are reused. */
	for (uint32_t i = 0; i < 3 * GUARD_SLOTS; i++)
		guard_end(g, IPPROTO_TCP, A(10, 43, 0, 0) + i, 80, GUARD_ANSWERED_OK, T0 + 100000, T0);
	untracked = 0;
	for (uint32_t i = 0; i < GUARD_SLOTS / 2; i++) {
		assert_int_equal(begin(IPPROTO_UDP, A(10, 99, 0, 0) + i, 53, T0 + 200000, 0, &tracked), GUARD_PASS);
		untracked += !tracked;
	}
	assert_int_equal(untracked, 0);
}

static void test_log_due(void **state)
{
	uint64_t t = T0;
	(void)state;
	assert_true(guard_log_due(g, A(192, 168, 56, 10), t));
	assert_false(guard_log_due(g, A(192, 168, 56, 10), t + 1000));
	assert_true(guard_log_due(g, A(198, 18, 0, 1), t + 2000));
	assert_true(guard_log_due(g, A(192, 168, 56, 10), t + GUARD_LOG_EVERY_US));
	/* A flood of new sources: at most GUARD_LOG_SOURCES lines a period. */
	int lines = 0;
	for (uint32_t i = 0; i < 1000; i++)
		lines += guard_log_due(g, A(10, 0, 0, 0) + i, t + GUARD_LOG_EVERY_US + 10 + i);
	assert_true(lines <= GUARD_LOG_SOURCES);
}

/* A new connect re-initialises the guard: what it knew is gone, and the
 * slots are free again (without rewriting the table). */
static void test_reinit_forgets(void **state)
{
	bool tracked;

	(void)state;
	for (uint16_t port = 1; port <= 200; port++)
		assert_int_equal(begin(IPPROTO_TCP, NOWHERE, port, T0 + port * 100000ull, 0, &tracked), GUARD_PASS);
	assert_non_null(guard_lookup(g, IPPROTO_TCP, NOWHERE, 80));
	guard_init(g, true, 0x04);
	assert_null(guard_lookup(g, IPPROTO_TCP, NOWHERE, 80));
	assert_false(guard_answered_lately(g, IPPROTO_TCP, NOWHERE, 80, T0));
	assert_int_equal(begin(IPPROTO_TCP, NOWHERE, 80, T0, 0, &tracked), GUARD_PASS);
	assert_true(tracked);
	assert_int_equal(guard_lookup(g, IPPROTO_TCP, NOWHERE, 80)->inflight, 1);
	guard_end(g, IPPROTO_TCP, NOWHERE, 80, GUARD_ANSWERED_OK, T0 + 100, T0);
	assert_true(guard_answered_lately(g, IPPROTO_TCP, NOWHERE, 80, T0 + 200));
	assert_false(guard_answered_lately(g, IPPROTO_TCP, NOWHERE, 80, T0 + GUARD_HEALTHY_US + 200));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_source_and_mark, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reinit_forgets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_passes_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lone_tcp_chain_waits_longer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_cut_confirmed_remembered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfirmed_cut_is_not_remembered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_is_never_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attempts_behind_a_queued_one_do_not_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_sequence_is_never_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_chain_remembered_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_due, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
