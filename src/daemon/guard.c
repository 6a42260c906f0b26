/* The loop guard's decisions (guard.h); the daemon acts on them in
 * loopguard.c.  The chain table is open addressing over a fixed array with
 * at most GUARD_PROBES slots looked at per call, so a lookup is O(1) and
 * nothing is allocated after start. */
#include "daemon/guard.h"

#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

void guard_init(struct guard *g, bool enabled, uint8_t tos)
{
	uint32_t gen = g->gen + 1;

	/* The table is not cleared but outdated: slots of another generation
	 * are free.  Writing 4096 zero slots would make the whole table
	 * resident (~350 KiB) before the first attempt. */
	memset(g, 0, offsetof(struct guard, tab));
	g->gen = gen ? gen : 1;
	g->enabled = enabled;
	g->dscp_mark = tos & 0xFC; /* ECN bits change on the way; DSCP does not */
}

void guard_clear_sources(struct guard *g)
{
	g->n_src = 0;
	g->src_cidrs.n = 0;
}

void guard_add_source(struct guard *g, uint32_t addr)
{
	if (addr == 0 || g->n_src >= GUARD_SOURCES_MAX)
		return;
	for (int i = 0; i < g->n_src; i++)
		if (g->src[i] == addr)
			return;
	g->src[g->n_src++] = addr;
}

void guard_add_source_cidr(struct guard *g, const struct cidr4 *c)
{
	if (g->src_cidrs.n < CIDR_LIST_MAX)
		g->src_cidrs.v[g->src_cidrs.n++] = *c;
}

bool guard_is_source(const struct guard *g, uint32_t src)
{
	for (int i = 0; i < g->n_src; i++)
		if (g->src[i] == src)
			return true;
	return cidr_list_contains(&g->src_cidrs, src);
}

enum guard_verdict guard_packet(const struct guard *g, uint32_t src, uint8_t tos)
{
	if (!g->enabled)
		return GUARD_PASS;
	if (guard_is_source(g, src))
		return GUARD_SOURCE;
	if (g->dscp_mark && (tos & 0xFC) == g->dscp_mark)
		return GUARD_MARK;
	return GUARD_PASS;
}

static uint32_t guard_hash(uint8_t proto, uint32_t addr, uint16_t port)
{
	uint64_t h = ((uint64_t)addr << 24 | (uint64_t)port << 8 | proto) * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(h >> 40);
}

/* A slot of an older generation is free, whatever it holds. */
static bool guard_free_slot(const struct guard *g, const struct guard_dst *e)
{
	return e->gen != g->gen || e->proto == 0;
}

static bool guard_match(const struct guard *g, const struct guard_dst *e, uint8_t proto, uint32_t addr,
			uint16_t port)
{
	return !guard_free_slot(g, e) && e->proto == proto && e->addr == addr && e->port == port;
}

static struct guard_dst *guard_find(struct guard *g, uint8_t proto, uint32_t addr, uint16_t port)
{
	uint32_t h = guard_hash(proto, addr, port);

	for (uint32_t i = 0; i < GUARD_PROBES; i++) {
		struct guard_dst *e = &g->tab[(h + i) & (GUARD_SLOTS - 1)];
		if (guard_match(g, e, proto, addr, port))
			return e;
	}
	return NULL;
}

const struct guard_dst *guard_lookup(const struct guard *g, uint8_t proto, uint32_t dst, uint16_t port)
{
	return guard_find((struct guard *)g, proto, dst, port);
}

/* The entry of a destination, made if need be in an empty slot or in the
 * least recently used one with nothing in flight; NULL when all the probed
 * slots are busy (the attempt then goes untracked: the daemon's caps
 * still bound it). */
static struct guard_dst *guard_get(struct guard *g, uint8_t proto, uint32_t addr, uint16_t port)
{
	uint32_t h = guard_hash(proto, addr, port);
	struct guard_dst *victim = NULL;

	for (uint32_t i = 0; i < GUARD_PROBES; i++) {
		struct guard_dst *e = &g->tab[(h + i) & (GUARD_SLOTS - 1)];
		if (guard_match(g, e, proto, addr, port))
			return e;
		if (guard_free_slot(g, e)) {
			if (!victim || !guard_free_slot(g, victim))
				victim = e;
		} else if (e->inflight == 0 && (!victim || (!guard_free_slot(g, victim) && e->last_use < victim->last_use))) {
			victim = e;
		}
	}
	if (!victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->gen = g->gen;
	victim->proto = proto;
	victim->addr = addr;
	victim->port = port;
	return victim;
}

uint64_t guard_window_us(const struct guard *g, uint32_t load)
{
	uint64_t w = g->srtt_us * GUARD_WINDOW_RTTS;

	w = MIN(MAX(w, (uint64_t)GUARD_WINDOW_MIN_US), (uint64_t)GUARD_WINDOW_MAX_US);
	return w + MIN((uint64_t)load * GUARD_LOAD_US, (uint64_t)GUARD_LOAD_MAX_US);
}

static bool guard_healthy(const struct guard_dst *e, uint64_t now)
{
	return e->last_ok && now - e->last_ok < GUARD_HEALTHY_US;
}

bool guard_answered_lately(const struct guard *g, uint8_t proto, uint32_t dst, uint16_t port, uint64_t now)
{
	const struct guard_dst *e = guard_lookup(g, proto, dst, port);

	return e && guard_healthy(e, now);
}

static uint64_t guard_dst_window(const struct guard *g, const struct guard_dst *e, uint64_t now, uint32_t load)
{
	uint64_t w = guard_window_us(g, load);

	return guard_healthy(e, now) ? MAX(w, (uint64_t)GUARD_HEALTHY_WINDOW_US) : w;
}

/* A loop remembered: confirmed, or (UDP, ICMP) taken as it was. */
static bool guard_remembered(const struct guard_dst *e, uint64_t now)
{
	return e->loop_until > now && e->confirmed;
}

static void guard_cut(struct guard *g, struct guard_dst *e, const struct guard_attempt *a)
{
	/* A TCP cut is confirmed by the refusal it causes; UDP and ICMP
	 * have no such echo, so they are taken as they are. */
	e->loop_until = a->now + GUARD_MEMORY_US;
	e->confirmed = a->proto != IPPROTO_TCP;
	e->cut_at = a->now;
	g->chains++;
}

/* A streak of sequential attempts, none answered for W: a chain. */
static bool guard_chain(struct guard *g, struct guard_dst *e, const struct guard_attempt *a)
{
	uint64_t w = guard_dst_window(g, e, a->now, a->load), age;
	bool behind;

	if (e->streak == 0 || a->now - e->last_begin > MAX(w, (uint64_t)GUARD_GAP_MIN_US)) {
		e->streak = 0;
		e->streak_start = e->streak_sent = a->now;
	}
	/* Has the manager answered anything sent after this streak began?
	 * If not, it may just be behind (a TCP burst's own connections). */
	behind = a->proto == IPPROTO_TCP && (e->streak_sent == UINT64_MAX || g->answered_sent <= e->streak_sent);
	age = a->now - e->streak_start;
	if (e->inflight > 0 && e->streak >= GUARD_CHAIN_MIN &&
	    age >= (behind ? MAX(w, (uint64_t)GUARD_LONE_US) : w)) {
		guard_cut(g, e, a);
		return true;
	}
	e->streak++;
	e->last_begin = a->now;
	return false;
}

enum guard_verdict guard_begin(struct guard *g, const struct guard_attempt *a, bool *tracked)
{
	struct guard_dst *e;

	*tracked = false;
	if (!g->enabled)
		return GUARD_PASS;
	if (!(e = guard_get(g, a->proto, a->dst, a->port))) {
		g->untracked++;
		return GUARD_PASS;
	}
	e->last_use = a->now;
	if (e->inflight > 0 && guard_remembered(e, a->now)) {
		e->cut_at = a->now;
		return GUARD_CHAIN;
	}
	if (e->unsent == 0 && guard_chain(g, e, a))
		return GUARD_CHAIN;
	e->inflight++;
	*tracked = true;
	return GUARD_PASS;
}

void guard_queued(struct guard *g, uint8_t proto, uint32_t dst, uint16_t port)
{
	struct guard_dst *e = guard_find(g, proto, dst, port);

	if (!e)
		return;
	e->unsent++;
	/* The attempt that began the streak waits: its streak has sent nothing. */
	if (e->streak == 1 && e->streak_sent == e->last_begin)
		e->streak_sent = UINT64_MAX;
}

void guard_sent(struct guard *g, uint8_t proto, uint32_t dst, uint16_t port, uint64_t now)
{
	struct guard_dst *e = guard_find(g, proto, dst, port);

	if (!e)
		return;
	if (e->unsent)
		e->unsent--;
	if (e->streak_sent == UINT64_MAX)
		e->streak_sent = now;
}

bool guard_overflow(struct guard *g, const struct guard_attempt *a)
{
	struct guard_dst *e;

	if (!g->enabled || !(e = guard_find(g, a->proto, a->dst, a->port)))
		return false;
	if (e->inflight == 0 || e->streak < GUARD_OVERFLOW_MIN || guard_healthy(e, a->now) ||
	    (e->loop_until > a->now && e->cut_at == a->now))
		return false;
	guard_cut(g, e, a);
	return true;
}

void guard_rtt_sample(struct guard *g, uint64_t us)
{
	/* One slow sample (a handshake behind a burst) must not blow the
	 * window up: a sample counts for at most 4 times the current mean. */
	if (g->srtt_us && us > 4 * g->srtt_us)
		us = 4 * g->srtt_us;
	g->srtt_us = g->srtt_us ? (7 * g->srtt_us + us) / 8 : MAX(us, (uint64_t)1);
}

void guard_end(struct guard *g, uint8_t proto, uint32_t dst, uint16_t port, enum guard_outcome o,
	       uint64_t now, uint64_t sent)
{
	struct guard_dst *e = guard_find(g, proto, dst, port);

	if (o != GUARD_NO_ANSWER)
		g->answered_sent = MAX(g->answered_sent, sent);
	if (!e)
		return;
	if (e->inflight)
		e->inflight--;
	e->last_use = now;
	switch (o) {
	case GUARD_ANSWERED_OK:
		e->streak = 0;
		e->last_ok = now;
		e->loop_until = 0;
		e->confirmed = false;
		break;
	case GUARD_ANSWERED_REFUSED:
		e->streak = 0;
		if (e->loop_until && now - e->cut_at <= GUARD_CONFIRM_US) {
			e->confirmed = true;
			e->loop_until = now + GUARD_MEMORY_US;
		}
		break;
	case GUARD_ANSWERED_OTHER:
		e->streak = 0;
		break;
	case GUARD_NO_ANSWER:
		break;
	}
}

bool guard_log_due(struct guard *g, uint32_t src, uint64_t now)
{
	int oldest = 0;

	for (int i = 0; i < GUARD_LOG_SOURCES; i++) {
		if (g->logged[i].at && g->logged[i].src == src) {
			if (now - g->logged[i].at < GUARD_LOG_EVERY_US)
				return false;
			g->logged[i].at = now;
			return true;
		}
		if (g->logged[i].at < g->logged[oldest].at)
			oldest = i;
	}
	/* A new source; when every slot logged within the period, stay quiet:
	 * at most GUARD_LOG_SOURCES lines per period, whatever the traffic. */
	if (g->logged[oldest].at && now - g->logged[oldest].at < GUARD_LOG_EVERY_US)
		return false;
	g->logged[oldest].src = src;
	g->logged[oldest].at = now;
	return true;
}

const char *guard_verdict_name(enum guard_verdict v)
{
	switch (v) {
	case GUARD_SOURCE: return "source";
	case GUARD_MARK: return "mark";
	case GUARD_CHAIN: return "chain";
	default: return "pass";
	}
}
