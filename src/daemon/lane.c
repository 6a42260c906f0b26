/* Lanes: the data path over several threads (lane.h). */
#include "daemon/lane.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "daemon/loopguard.h"
#include "net/packet.h"

#define VIF_READS_PER_WAKEUP 64
#define LANE_STATS_MS 500 /* a lane with flows publishes its numbers this often */

_Static_assert(sizeof(struct counters) % sizeof(uint64_t) == 0, "counters: uint64_t only");

int lane_vif_write(struct lane *ln, const void *p, size_t len, bool partial)
{
	if (vif_write(ln->vif_fd, p, len, partial) < 0) {
		ln->c.pkts_dropped++;
		return -EIO;
	}
	return 0;
}

static void lane_stats_timer(struct loop *l, struct loop_timer *t);

void lane_vif_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct lane *ln = arg;
	struct daemon *d = ln->d;

	(void)fd;
	(void)events;
	for (int i = 0; i < VIF_READS_PER_WAKEUP; i++) {
		ssize_t n = vif_read(ln->vif_fd, ln->pkt, sizeof(ln->pkt), &ln->pkt_partial);
		struct pkt4 p;

		if (n == -EMSGSIZE)
			ln->c.pkts_dropped++;
		if (n < 0 && n != -EMSGSIZE)
			break;
		ln->c.pkts_in++;
		if (n < 20 || (ln->pkt[0] >> 4) != 4)
			continue; /* IPv6 and junk: not routed here */
		/* Parsed once; every layer below reads the struct. */
		if (pkt4_parse(ln->pkt, (size_t)n, &p) < 0) {
			ln->c.pkts_dropped++;
			continue;
		}
		if (loopguard_packet(ln, &p))
			continue; /* the cluster sent it back: answered, not forwarded */
		if (p.proto == IPPROTO_TCP)
			hairpin_from_vif(&ln->hp, &p);
		else if (ln->id != 0) /* the VIF steers the rest to lane 0 */
			ln->c.pkts_dropped++;
		else if (p.proto == IPPROTO_UDP)
			dgram_udp_from_vif(&d->dg, &p);
		else if (p.proto == IPPROTO_ICMP)
			dgram_icmp_from_vif(&d->dg, &p);
		else
			ln->c.pkts_dropped++;
	}
	if (ln->id != 0 && ln->hp.n_flows && !loop_timer_armed(&ln->stats_timer))
		loop_timer_arm(l, &ln->stats_timer, LANE_STATS_MS, lane_stats_timer, ln);
}

/* ---- numbers for status ---- */

static void lane_stats_now(struct lane *ln, struct lane_stats *st)
{
	*st = (struct lane_stats){ .n_tcp = ln->hp.n_tcp, .n_flows = ln->hp.n_flows };
	hairpin_bytes(&ln->hp, st->live_bytes);
}

static void lane_stats_publish(struct lane *ln)
{
	struct lane_stats st;

	lane_stats_now(ln, &st);
	pthread_mutex_lock(&ln->mu);
	ln->stats = st;
	pthread_mutex_unlock(&ln->mu);
}

/* While the lane has flows: their numbers, every LANE_STATS_MS, and once
 * more when the last is gone. */
static void lane_stats_timer(struct loop *l, struct loop_timer *t)
{
	struct lane *ln = t->arg;

	lane_stats_publish(ln);
	if (ln->hp.n_flows)
		loop_timer_arm(l, t, LANE_STATS_MS, lane_stats_timer, ln);
}

void lanes_stats(struct daemon *d, struct lane_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (int k = 0; k < d->n_lanes; k++) {
		struct lane *ln = d->lanes[k];
		struct lane_stats st;

		if (k == 0) {
			lane_stats_now(ln, &st);
		} else {
			pthread_mutex_lock(&ln->mu);
			st = ln->stats;
			pthread_mutex_unlock(&ln->mu);
		}
		sum->n_tcp += st.n_tcp;
		sum->n_flows += st.n_flows;
		sum->live_bytes[0] += st.live_bytes[0];
		sum->live_bytes[1] += st.live_bytes[1];
	}
}

/* Counters are written by their lane alone; a reader elsewhere takes each
 * word as it is (a count a moment old). */
void lanes_counters(const struct daemon *d, struct counters *sum)
{
	uint64_t *s = (uint64_t *)sum;

	memset(sum, 0, sizeof(*sum));
	for (int k = 0; k < d->n_lanes; k++) {
		const uint64_t *c = (const uint64_t *)&d->lanes[k]->c;
		for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++)
			s[i] += __atomic_load_n(&c[i], __ATOMIC_RELAXED);
	}
}

uint32_t lanes_dialing(const struct daemon *d)
{
	return __atomic_load_n(&d->caps.n_dialing, __ATOMIC_RELAXED);
}

uint32_t lanes_held(const struct daemon *d)
{
	uint32_t n = 0;

	for (int k = 0; k < d->n_lanes; k++)
		n += hairpin_held(&d->lanes[k]->hp);
	return n;
}

/* ---- the mailbox ---- */

static void lane_post(struct lane *ln)
{
	uint64_t one = 1;

	if (ln->evfd >= 0 && write(ln->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("lane %d: cannot wake it: %s", ln->id, strerror(errno));
}

void lanes_refuse_dst(struct daemon *d, struct lane *self, uint32_t dst, uint16_t dport)
{
	for (int k = 0; k < d->n_lanes; k++) {
		struct lane *ln = d->lanes[k];

		if (ln == self) {
			hairpin_refuse_dst(&ln->hp, dst, dport);
			continue;
		}
		pthread_mutex_lock(&ln->mu);
		if (ln->n_refuse < LANE_REFUSE_MAX) { /* more: their dials time out as before */
			ln->refuse[ln->n_refuse].dst = dst;
			ln->refuse[ln->n_refuse++].dport = dport;
		}
		pthread_mutex_unlock(&ln->mu);
		lane_post(ln);
	}
}

void lane_drain(struct lane *ln)
{
	struct pollfd pfd = { .fd = ln->vif_fd, .events = POLLIN };

	for (int i = 0; ln->vif_fd >= 0 && i < 8 && poll(&pfd, 1, 10) > 0; i++)
		lane_vif_event(ln->loop, ln->vif_fd, LOOP_IN, ln);
}

/* The lane's flows reset (final), their RSTs passed on, and the rest. */
static void lane_wind_down(struct lane *ln)
{
	hairpin_abort_all(&ln->hp, true);
	lane_drain(ln);
	loop_del(ln->loop, ln->vif_fd); /* nothing more read: events already fetched go stale */
	loop_timer_cancel(ln->loop, &ln->stats_timer);
	hairpin_fini(&ln->hp);
	tunnel_fini(&ln->own);
	lane_stats_publish(ln);
}

static void lane_mail(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct lane *ln = arg;
	struct { uint32_t dst; uint16_t dport; } r[LANE_REFUSE_MAX];
	uint8_t session[PROTO_SESSION_LEN];
	uint64_t v;
	unsigned gen;
	bool up, stop;
	int n;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&ln->mu);
	gen = ln->gen;
	up = ln->want_up;
	stop = ln->stop;
	memcpy(session, ln->session, sizeof(session));
	n = ln->n_refuse;
	memcpy(r, ln->refuse, (size_t)n * sizeof(r[0]));
	ln->n_refuse = 0;
	pthread_mutex_unlock(&ln->mu);

	for (int i = 0; i < n; i++)
		hairpin_refuse_dst(&ln->hp, r[i].dst, r[i].dport);
	if (ln->id == 0)
		return; /* lane 0 follows the session through the daemon itself */
	if (gen != ln->seen_gen) {
		ln->seen_gen = gen;
		if (ln->is_up) { /* the session went (and may be back already) */
			tunnel_stop(&ln->own);
			hairpin_abort_all(&ln->hp, false);
			ln->is_up = false;
		}
		if (up && !stop) {
			tunnel_lane_up(&ln->own, session);
			ln->is_up = true;
		}
	}
	if (stop) {
		lane_wind_down(ln);
		loop_stop(l);
	}
}

static void lane_tell(struct daemon *d, bool up, bool stop)
{
	for (int k = 1; k < d->n_lanes; k++) {
		struct lane *ln = d->lanes[k];

		if (!ln)
			continue;
		pthread_mutex_lock(&ln->mu);
		ln->gen++;
		ln->want_up = up;
		ln->stop = ln->stop || stop;
		memcpy(ln->session, d->tun.cfg.session, sizeof(ln->session));
		pthread_mutex_unlock(&ln->mu);
		lane_post(ln);
	}
}

void lanes_session_up(struct daemon *d)
{
	lane_tell(d, true, false);
}

void lanes_session_lost(struct daemon *d)
{
	lane_tell(d, false, false);
}

/* ---- life ---- */

static void lane_rtt(void *arg, uint64_t us)
{
	struct lane *ln = arg;

	daemon_guard_lock(ln->d);
	guard_rtt_sample(&ln->d->guard, us);
	daemon_guard_unlock(ln->d);
}

static const struct tunnel_ops lane_tunnel_ops = { .rtt = lane_rtt };

/* Mapped, not calloc'd: its packet buffers (128 KiB) become resident only
 * as far as packets reach, where calloc may have to clear them. */
static struct lane *lane_alloc(struct daemon *d, int id)
{
	struct lane *ln = mmap(NULL, sizeof(*ln), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ln == MAP_FAILED)
		return NULL;
	ln->d = d;
	ln->id = id;
	ln->vif_fd = -1;
	ln->evfd = -1;
	pthread_mutex_init(&ln->mu, NULL);
	return ln;
}

struct lane *lane_new0(struct daemon *d)
{
	struct lane *ln = lane_alloc(d, 0);

	if (ln) {
		ln->loop = d->loop;
		ln->tun = &d->tun;
	}
	return ln;
}

/* A lane's loop, transports, hairpin and mailbox; its thread not yet. */
static int lane_open(struct daemon *d, struct lane *ln)
{
	int ret;

	ln->vif_fd = d->vif.fds[ln->id];
	if (ln->id != 0) {
		if (!(ln->loop = loop_new()))
			return -errno;
		ln->tun = &ln->own;
		tunnel_lane_init(&ln->own, ln->loop, &d->tun, &lane_tunnel_ops, ln);
	}
	if ((ret = hairpin_init(&ln->hp, ln, d->grace_ms)) < 0)
		return ret;
	if ((ln->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -errno;
	if ((ret = loop_add(ln->loop, ln->evfd, LOOP_IN, lane_mail, ln)) < 0)
		return ret;
	return loop_add(ln->loop, ln->vif_fd, LOOP_IN, lane_vif_event, ln);
}

int lanes_start(struct daemon *d)
{
	int ret = 0;

	for (int k = 1; k < d->threads; k++)
		if (!d->lanes[k] && !(d->lanes[k] = lane_alloc(d, k)))
			return -ENOMEM;
	d->n_lanes = d->threads;
	hairpin_caps_init(&d->caps);
	for (int k = 0; k < d->n_lanes; k++)
		if ((ret = lane_open(d, d->lanes[k])) < 0)
			return ret;
	for (int k = 1; k < d->n_lanes && ret == 0; k++) {
		ret = loop_thread_start(d->lanes[k]->loop, &d->lanes[k]->thread);
		d->lanes[k]->started = ret == 0;
	}
	return ret;
}

void lanes_stop(struct daemon *d)
{
	lane_tell(d, false, true);
	for (int k = 1; k < d->n_lanes; k++) {
		struct lane *ln = d->lanes[k];

		if (ln && ln->started) {
			pthread_join(ln->thread, NULL);
			ln->started = false;
			ln->stopped = true;
		}
	}
}

void lanes_free(struct daemon *d)
{
	for (int k = 0; k < LANES_MAX; k++) {
		struct lane *ln = d->lanes[k];

		if (!ln)
			continue;
		if (k != 0 && !ln->stopped) { /* its thread never ran */
			hairpin_fini(&ln->hp);
			if (ln->loop) /* its tunnel came with it (lane_open) */
				tunnel_fini(&ln->own);
		}
		if (k != 0)
			loop_free(ln->loop);
		if (ln->evfd >= 0)
			close(ln->evfd);
		pthread_mutex_destroy(&ln->mu);
		munmap(ln, sizeof(*ln));
		d->lanes[k] = NULL;
	}
}
