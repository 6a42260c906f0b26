/* Unit tests for src/daemon/nat.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/nat.h"

#define A(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define F_BASE A(10, 0, 0, 100)
#define PORTS (65536u - NAT_PORT_MIN)

static uint64_t rng_state = 0x6e617431ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static struct nat_key key_n(uint32_t n)
{
	struct nat_key k = {.src = A(10, 0, 0, 1), .dst = A(10, 96, 0, 0) + n / 1000,
			    .sport = (uint16_t)(32768 + n % 1000), .dport = 80};
	return k;
}

static void *tag(uintptr_t n)
{
	return (void *)(n + 1);
}

static uint64_t tuple_index(struct nat_tuple tu, uint32_t n_addrs)
{
	return (uint64_t)(tu.port - NAT_PORT_MIN) * n_addrs + (tu.addr - F_BASE);
}

static void test_basic(void **state)
{
	struct nat_table *t = nat_new(1000, F_BASE, 4, 1, 1);
	struct nat_key k = key_n(1), k2 = key_n(2);
	struct nat_tuple tu, tu2;

	(void)state;
	assert_non_null(t);
	assert_int_equal(nat_count(t), 0);
	assert_null(nat_lookup_app(t, &k));
	assert_int_equal(nat_insert(t, &k, tag(1), &tu), 0);
	assert_true(nat_owns_addr(t, tu.addr));
	assert_true(tu.port >= NAT_PORT_MIN);
	assert_int_equal(nat_count(t), 1);
	assert_ptr_equal(nat_lookup_app(t, &k), tag(1));
	assert_ptr_equal(nat_lookup_tuple(t, tu.addr, tu.port), tag(1));
	assert_null(nat_lookup_app(t, &k2));
	assert_null(nat_lookup_tuple(t, tu.addr, (uint16_t)(tu.port ^ 1)));
	assert_int_equal(nat_insert(t, &k, tag(9), &tu2), -EEXIST);
	assert_int_equal(nat_count(t), 1);
	assert_ptr_equal(nat_lookup_app(t, &k), tag(1));
	assert_int_equal(nat_insert(t, &k2, tag(2), &tu2), 0);
	assert_false(tu.addr == tu2.addr && tu.port == tu2.port);
	assert_ptr_equal(nat_lookup_tuple(t, tu2.addr, tu2.port), tag(2));
	assert_ptr_equal(nat_remove(t, &k), tag(1));
	assert_null(nat_remove(t, &k));
	assert_null(nat_lookup_app(t, &k));
	assert_null(nat_lookup_tuple(t, tu.addr, tu.port));
	assert_ptr_equal(nat_lookup_app(t, &k2), tag(2));
	assert_int_equal(nat_count(t), 1);
	/* a key differing in one field only is another key */
	k = k2;
	k.dport++;
	assert_null(nat_lookup_app(t, &k));
	k = k2;
	k.src++;
	assert_null(nat_lookup_app(t, &k));
	/* NULL data is allowed (lookups cannot tell it from absent) */
	assert_int_equal(nat_insert(t, &k, NULL, &tu), 0);
	assert_int_equal(nat_count(t), 2);
	assert_null(nat_remove(t, &k));
	assert_int_equal(nat_count(t), 1);
	nat_free(t);
	nat_free(NULL);
}

static void test_new_args(void **state)
{
	(void)state;
	assert_null(nat_new(10, F_BASE, 0, 1, 1));
	assert_null(nat_new(0, F_BASE, 1, 1, 1));
	assert_null(nat_new(10, 0xffffffffu, 2, 1, 1));
	struct nat_table *t = nat_new(10, 0xfffffffeu, 2, 1, 1);
	assert_non_null(t);
	assert_true(nat_owns_addr(t, 0xffffffffu));
	assert_true(nat_owns_addr(t, 0xfffffffeu));
	assert_false(nat_owns_addr(t, 0));
	nat_free(t);
}

/* A lane's share (daemon/lane.h): every n-th address from its number on,
 * exactly those the VIF steers to it ((addr - base) % n == lane). */
static void test_stride(void **state)
{
	(void)state;
	assert_null(nat_new(10, F_BASE, 1, 0, 1));
	for (uint32_t n = 1; n <= 4; n++)
		for (uint32_t lane = 0; lane < n; lane++) {
			uint32_t n_addrs = (64 - lane + n - 1) / n;
			struct nat_table *t = nat_new(100000, F_BASE + lane, n_addrs, n, 3);
			uint32_t seen = 0;

			assert_non_null(t);
			for (uint32_t a = F_BASE - 2; a < F_BASE + 70; a++)
				assert_int_equal(nat_owns_addr(t, a), a >= F_BASE && a < F_BASE + 64 && (a - F_BASE) % n == lane);
			for (uint32_t i = 0; i < 3 * n_addrs; i++) {
				struct nat_key k = { .src = 1, .dst = 2, .sport = (uint16_t)(1000 + i), .dport = 80 };
				struct nat_tuple tu;
				assert_int_equal(nat_insert(t, &k, &seen, &tu), 0);
				assert_true(nat_owns_addr(t, tu.addr));
				assert_int_equal((tu.addr - F_BASE) % n, lane);
				assert_ptr_equal(nat_lookup_tuple(t, tu.addr, tu.port), &seen);
			}
			nat_free(t);
		}
}

static void test_owns_addr(void **state)
{
	struct nat_table *t = nat_new(10, F_BASE, 16, 1, 7);

	(void)state;
	assert_false(nat_owns_addr(t, F_BASE - 1));
	assert_true(nat_owns_addr(t, F_BASE));
	assert_true(nat_owns_addr(t, F_BASE + 15));
	assert_false(nat_owns_addr(t, F_BASE + 16));
	assert_false(nat_owns_addr(t, 0));
	assert_false(nat_owns_addr(t, 0xffffffffu));
	assert_null(nat_lookup_tuple(t, F_BASE + 16, 2000));
	assert_null(nat_lookup_tuple(t, F_BASE, 80));
	nat_free(t);
}

static void test_enospc(void **state)
{
	struct nat_table *t = nat_new(100, F_BASE, 1, 1, 3);
	struct nat_key k;
	struct nat_tuple tu;

	(void)state;
	for (uint32_t i = 0; i < 100; i++) {
		k = key_n(i);
		assert_int_equal(nat_insert(t, &k, tag(i), &tu), 0);
	}
	k = key_n(100);
	assert_int_equal(nat_insert(t, &k, tag(100), &tu), -ENOSPC);
	k = key_n(5);
	assert_int_equal(nat_insert(t, &k, tag(5), &tu), -EEXIST); /* EEXIST first */
	assert_ptr_equal(nat_remove(t, &k), tag(5));
	k = key_n(100);
	assert_int_equal(nat_insert(t, &k, tag(100), &tu), 0);
	assert_int_equal(nat_count(t), 100);
	nat_free(t);
}

/* max_entries above the tuple space: full when the space is. */
static void test_space_exhausted(void **state)
{
	struct nat_table *t = nat_new(1000000, F_BASE, 1, 1, 11);
	struct nat_key k;
	struct nat_tuple tu;
	static uint8_t seen[PORTS];

	(void)state;
	for (uint32_t i = 0; i < PORTS; i++) {
		k = key_n(i);
		assert_int_equal(nat_insert(t, &k, tag(i), &tu), 0);
		assert_int_equal(seen[tu.port - NAT_PORT_MIN]++, 0);
	}
	k = key_n(PORTS);
	assert_int_equal(nat_insert(t, &k, tag(0), &tu), -ENOSPC);
	k = key_n(777);
	assert_ptr_equal(nat_remove(t, &k), tag(777));
	k = key_n(PORTS);
	assert_int_equal(nat_insert(t, &k, tag(0), &tu), 0);
	nat_free(t);
}

/* One insert and one remove at a time: the tuples go round the whole space
 * in order, each once, then start again where they began. */
static void test_round_robin_order(void **state)
{
	const uint32_t n_addrs = 3;
	const uint64_t space = (uint64_t)n_addrs * PORTS;
	struct nat_table *t = nat_new(10, F_BASE, n_addrs, 1, 42);
	static uint8_t seen[3 * PORTS];
	struct nat_key k = key_n(0);
	struct nat_tuple tu;
	uint64_t first = 0, prev = 0;

	(void)state;
	for (uint64_t i = 0; i < space + 5; i++) {
		assert_int_equal(nat_insert(t, &k, tag(1), &tu), 0);
		assert_true(nat_owns_addr(t, tu.addr));
		assert_true(tu.port >= NAT_PORT_MIN);
		uint64_t idx = tuple_index(tu, n_addrs);
		if (i == 0)
			first = idx;
		else
			assert_int_equal(idx, (prev + 1) % space);
		if (i < space)
			assert_int_equal(seen[idx]++, 0);
		else
			assert_int_equal(idx, (first + (i - space)) % space);
		prev = idx;
		assert_ptr_equal(nat_remove(t, &k), tag(1));
	}
	nat_free(t);
}

/* Live tuples are skipped when the cursor comes round to them again. */
static void test_wrap_skips_live(void **state)
{
	struct nat_table *t = nat_new(100, F_BASE, 1, 1, 5);
	struct nat_key live[3] = {key_n(100), key_n(101), key_n(102)}, k = key_n(0);
	struct nat_tuple lt[3], tu;

	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(nat_insert(t, &live[i], tag(100 + i), &lt[i]), 0);
	for (uint32_t i = 0; i < PORTS - 3; i++) {
		assert_int_equal(nat_insert(t, &k, tag(0), &tu), 0);
		for (int j = 0; j < 3; j++)
			assert_false(tu.port == lt[j].port);
		assert_ptr_equal(nat_remove(t, &k), tag(0));
	}
	/* the cursor is back at lt[0]: all three are skipped */
	assert_int_equal(nat_insert(t, &k, tag(0), &tu), 0);
	assert_int_equal(tu.port, (lt[2].port - NAT_PORT_MIN + 1) % PORTS + NAT_PORT_MIN);
	assert_ptr_equal(nat_remove(t, &k), tag(0));
	/* lt[1] freed: it comes back only on the next round */
	assert_ptr_equal(nat_remove(t, &live[1]), tag(101));
	for (uint32_t i = 0; i < PORTS - 4; i++) {
		assert_int_equal(nat_insert(t, &k, tag(0), &tu), 0);
		assert_int_not_equal(tu.port, lt[1].port);
		assert_ptr_equal(nat_remove(t, &k), tag(0));
	}
	assert_int_equal(nat_insert(t, &k, tag(0), &tu), 0);
	assert_int_equal(tu.port, lt[1].port);
	assert_ptr_equal(nat_lookup_tuple(t, lt[0].addr, lt[0].port), tag(100));
	assert_ptr_equal(nat_lookup_tuple(t, lt[2].addr, lt[2].port), tag(102));
	nat_free(t);
}

static void test_seed(void **state)
{
	struct nat_key k = key_n(0);
	struct nat_tuple a, b;
	int differ = 0;

	(void)state;
	for (uint64_t seed = 0; seed < 20; seed++) {
		struct nat_table *t1 = nat_new(10, F_BASE, 64, 1, seed), *t2 = nat_new(10, F_BASE, 64, 1, seed);
		struct nat_table *t3 = nat_new(10, F_BASE, 64, 1, seed + 1000);
		assert_int_equal(nat_insert(t1, &k, tag(0), &a), 0);
		assert_int_equal(nat_insert(t2, &k, tag(0), &b), 0);
		assert_memory_equal(&a, &b, sizeof(a)); /* same seed, same start */
		assert_int_equal(nat_insert(t3, &k, tag(0), &b), 0);
		differ += a.addr != b.addr || a.port != b.port;
		nat_free(t1);
		nat_free(t2);
		nat_free(t3);
	}
	assert_true(differ >= 18);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void test_growth_and_memory(void **state)
{
	const uint32_t n = 50000;
	struct nat_table *t = nat_new(200000, F_BASE, 64, 1, 9);
	uint64_t *idx = calloc(n, sizeof(*idx));
	struct nat_tuple tu;
	struct nat_key k;

	(void)state;
	assert_true(nat_mem_bytes(t) < 64 * 1024);
	for (uint32_t i = 0; i < n; i++) {
		k = key_n(i);
		assert_int_equal(nat_insert(t, &k, tag(i), &tu), 0);
		idx[i] = tuple_index(tu, 64);
		if (i + 1 == 10000) {
			assert_true(nat_mem_bytes(t) < 1024 * 1024);
			print_message("nat: %zu bytes with 10000 entries\n", nat_mem_bytes(t));
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		k = key_n(i);
		assert_ptr_equal(nat_lookup_app(t, &k), tag(i));
		tu.addr = F_BASE + (uint32_t)(idx[i] % 64);
		tu.port = (uint16_t)(NAT_PORT_MIN + idx[i] / 64);
		assert_ptr_equal(nat_lookup_tuple(t, tu.addr, tu.port), tag(i));
	}
	qsort(idx, n, sizeof(*idx), cmp_u64);
	for (uint32_t i = 1; i < n; i++)
		assert_true(idx[i - 1] != idx[i]); /* unique among live entries */
	for (uint32_t i = 0; i < n; i++) {
		k = key_n(i);
		assert_ptr_equal(nat_remove(t, &k), tag(i));
	}
	assert_int_equal(nat_count(t), 0);
	k = key_n(1);
	assert_int_equal(nat_insert(t, &k, tag(1), &tu), 0);
	assert_ptr_equal(nat_lookup_app(t, &k), tag(1));
	nat_free(t);
	free(idx);

	/* an idle table for a large max_entries is small */
	t = nat_new(1000000, F_BASE, 64, 1, 9);
	assert_true(nat_mem_bytes(t) < 64 * 1024);
	nat_free(t);
}

/* ---- random operations against a reference model ---- */

#define MODEL_KEYS 3000
#define MODEL_MAX 2000

struct model {
	bool live[MODEL_KEYS];
	struct nat_tuple tu[MODEL_KEYS];
	uint32_t count;
};

static void model_check_all(const struct nat_table *t, const struct model *m)
{
	for (uint32_t i = 0; i < MODEL_KEYS; i++) {
		struct nat_key k = key_n(i);
		void *d = nat_lookup_app(t, &k);
		if (!m->live[i]) {
			assert_null(d);
			continue;
		}
		assert_ptr_equal(d, tag(i));
		assert_ptr_equal(nat_lookup_tuple(t, m->tu[i].addr, m->tu[i].port), tag(i));
	}
	assert_int_equal(nat_count(t), m->count);
}

static void model_insert(struct nat_table *t, struct model *m, uint32_t i)
{
	struct nat_key k = key_n(i);
	struct nat_tuple tu;
	int r = nat_insert(t, &k, tag(i), &tu);

	if (m->live[i]) {
		assert_int_equal(r, -EEXIST);
	} else if (m->count == MODEL_MAX) {
		assert_int_equal(r, -ENOSPC);
	} else {
		assert_int_equal(r, 0);
		/* the tuple was free: nobody maps it */
		assert_ptr_equal(nat_lookup_tuple(t, tu.addr, tu.port), tag(i));
		m->live[i] = true;
		m->tu[i] = tu;
		m->count++;
	}
}

static void test_random_vs_model(void **state)
{
	static struct model m;
	/* 2 addresses: the cursor wraps several times during the run */
	struct nat_table *t = nat_new(MODEL_MAX, F_BASE, 2, 1, 1234);
	static uint32_t owner[2 * PORTS];

	(void)state;
	memset(&m, 0, sizeof(m));
	for (int op = 0; op < 100000; op++) {
		uint32_t i = rnd() % MODEL_KEYS;
		/* bias towards inserts until full, so ENOSPC happens */
		if (rnd() % 100 < 55) {
			model_insert(t, &m, i);
		} else {
			struct nat_key k = key_n(i);
			void *d = nat_remove(t, &k);
			assert_ptr_equal(d, m.live[i] ? tag(i) : NULL);
			if (m.live[i])
				m.count--;
			m.live[i] = false;
		}
		if (op % 5000 == 0)
			model_check_all(t, &m);
	}
	model_check_all(t, &m);
	/* tuples unique among live entries */
	memset(owner, 0, sizeof(owner));
	for (uint32_t i = 0; i < MODEL_KEYS; i++) {
		if (!m.live[i])
			continue;
		uint64_t x = tuple_index(m.tu[i], 2);
		assert_int_equal(owner[x], 0);
		owner[x] = i + 1;
	}
	nat_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_new_args),
		cmocka_unit_test(test_owns_addr),
		cmocka_unit_test(test_stride),
		cmocka_unit_test(test_enospc),
		cmocka_unit_test(test_space_exhausted),
		cmocka_unit_test(test_round_robin_order),
		cmocka_unit_test(test_wrap_skips_live),
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_growth_and_memory),
		cmocka_unit_test(test_random_vs_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
