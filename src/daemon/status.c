/* `subway status` (status.h). */
#include "daemon/status.h"

#include <unistd.h>

#include "common/json.h"
#include "daemon/daemon.h"
#include "daemon/dnssrv.h"
#include "net/tls.h"

static const char *state_name(enum dstate s)
{
	switch (s) {
	case D_CONNECTING: return "connecting";
	case D_CONNECTED: return "connected";
	case D_RECONNECTING: return "reconnecting";
	default: return "idle";
	}
}

static void status_cidrs(struct json *j, const char *key, const struct cidr_list *l)
{
	char buf[20];

	json_arr_begin(j, key);
	for (int i = 0; i < l->n; i++)
		json_str(j, NULL, cidr4_str(&l->v[i], buf));
	json_arr_end(j);
}

static const char *const info_src_keys[INFO_SRC_MAX_] = { "pod_cidrs", "service_cidrs", "domain", "dns", "nodes" };

static void status_cluster(struct json *j, const struct daemon *d)
{
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	char ip[16];

	json_obj_begin(j, "cluster");
	status_cidrs(j, "pod_cidrs", &ci->pod);
	status_cidrs(j, "service_cidrs", &ci->svc);
	json_str(j, "domain", ci->domain);
	json_str(j, "dns", ci->dns ? ip4_str(ci->dns, ip) : NULL);
	json_arr_begin(j, "nodes");
	for (int i = 0; i < ci->n_nodes; i++)
		json_str(j, NULL, ip4_str(ci->nodes[i], ip));
	json_arr_end(j);
	/* where the manager got each value: flag, env, derived, default (none: not given) */
	json_obj_begin(j, "sources");
	for (int i = 0; i < INFO_SRC_MAX_; i++)
		json_str(j, info_src_keys[i], info_source_name(ci->src[i]));
	json_obj_end(j);
	json_obj_end(j);
}

/* The lanes' transports, all lanes together (other lanes' numbers read
 * as they are). */
enum transport_count { TR_IDLE, TR_CONNECTING, TR_TRUNKS };

static int status_transports(const struct daemon *d, enum transport_count what)
{
	int n = 0;

	for (int k = 0; k < d->n_lanes; k++) {
		const struct tunnel *t = d->lanes[k]->tun;
		switch (what) {
		case TR_IDLE: n += __atomic_load_n(&t->pool.n_idle, __ATOMIC_RELAXED); break;
		case TR_CONNECTING: n += __atomic_load_n(&t->pool.set.n_connecting, __ATOMIC_RELAXED) +
			     __atomic_load_n(&t->trunks.set.n_connecting, __ATOMIC_RELAXED); break;
		case TR_TRUNKS: n += __atomic_load_n(&t->trunks.n, __ATOMIC_RELAXED);
		}
	}
	return n;
}

static void status_counters(struct json *j, const struct counters *c, const struct lane_stats *st)
{
	json_obj_begin(j, "counters");
	json_uint(j, "dials", c->dials);
	json_uint(j, "dials_ok", c->dials_ok);
	json_obj_begin(j, "dial_failures");
	for (int s = 1; s < DIAL_STATUS_MAX_; s++)
		json_uint(j, dial_status_name((uint8_t)s), c->dial_fail[s]);
	json_obj_end(j);
	json_uint(j, "bytes_to_cluster", c->bytes_out + st->live_bytes[0]);
	json_uint(j, "bytes_from_cluster", c->bytes_in + st->live_bytes[1]);
	json_uint(j, "tcp_flows_total", c->tcp_flows_total);
	json_uint(j, "udp_flows_total", c->udp_flows_total);
	json_uint(j, "udp_datagrams_out", c->udp_out);
	json_uint(j, "udp_datagrams_in", c->udp_in);
	json_uint(j, "udp_dropped", c->udp_dropped);
	json_uint(j, "pings", c->pings);
	json_uint(j, "pongs", c->pongs);
	json_uint(j, "packets_dropped", c->pkts_dropped);
	json_uint(j, "reconnects", c->reconnects);
	json_uint(j, "failed_while_down", c->failed_down);
	json_obj_end(j);
}

/* manager.tls: null with --insecure. */
static void status_tls(struct json *j, const struct daemon *d)
{
	const struct pconn_cfg *cfg = &d->tun.cfg;
	const struct tls_client_info *ti = cfg->tls_ctx ? tls_client_info(cfg->tls_ctx) : NULL;
	char fp[TLS_FP_HEX_LEN + 1];

	if (!ti) {
		json_null(j, "tls");
		return;
	}
	json_obj_begin(j, "tls");
	json_str(j, "version", "TLSv1.3");
	json_str(j, "fingerprint", tls_fp_str(cfg->fingerprint, fp));
	json_str(j, "cipher", tunnel_cipher(&d->tun));
	/* one context for every lane (lane.h); their counts as they are */
	json_uint(j, "handshakes_full", __atomic_load_n(&ti->full, __ATOMIC_RELAXED));
	json_uint(j, "handshakes_resumed", __atomic_load_n(&ti->resumed, __ATOMIC_RELAXED));
	json_uint(j, "certificates_refused", __atomic_load_n(&ti->refused, __ATOMIC_RELAXED));
	json_obj_end(j);
}

static void status_loop_guard(struct json *j, struct daemon *d, const struct counters *c)
{
	const struct guard *g = &d->guard;
	char ip[16], buf[20];

	json_obj_begin(j, "loop_guard");
	json_bool(j, "enabled", g->enabled);
	snprintf(buf, sizeof(buf), "0x%02x", g->dscp_mark);
	json_str(j, "mark", g->enabled && g->dscp_mark ? buf : NULL);
	json_arr_begin(j, "sources");
	if (g->enabled) {
		for (int i = 0; i < g->n_src; i++)
			json_str(j, NULL, ip4_str(g->src[i], ip));
		for (int i = 0; i < g->src_cidrs.n; i++)
			json_str(j, NULL, cidr4_str(&g->src_cidrs.v[i], buf));
	}
	json_arr_end(j);
	daemon_guard_lock(d);
	json_uint(j, "chain_window_us", guard_window_us(g, lanes_dialing(d)));
	json_uint(j, "chains_cut", g->chains);
	daemon_guard_unlock(d);
	json_obj_end(j);
	json_obj_begin(j, "loops_blocked");
	json_uint(j, "tcp", c->loops_tcp);
	json_uint(j, "udp", c->loops_udp);
	json_uint(j, "dns", c->loops_dns);
	json_uint(j, "icmp", c->loops_icmp);
	json_str(j, "last_source", d->loop_last_src ? ip4_str(d->loop_last_src, ip) : NULL);
	json_obj_end(j);
	json_obj_begin(j, "limits");
	json_uint(j, "dials_in_flight", DIALS_MAX);
	json_uint(j, "dials_per_s", DIAL_RATE_PER_S);
	json_uint(j, "dial_burst", DIAL_BURST);
	json_uint(j, "tcp_flows", d->caps.flows_max);
	json_uint(j, "udp_flows", UDP_FLOWS_MAX);
	json_uint(j, "refused", c->dials_limited);
	json_obj_end(j);
}

void status_write_json(struct daemon *d, FILE *fp)
{
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	const struct tunnel *t = &d->tun;
	struct counters cs, *c = &cs;
	struct lane_stats st;
	struct json j;
	char ip[16], buf[40];

	lanes_counters(d, c);
	lanes_stats(d, &st);
	json_init(&j, fp, true);
	json_obj_begin(&j, NULL);
	json_bool(&j, "connected", d->state == D_CONNECTED);
	json_str(&j, "state", state_name(d->state));
	json_int(&j, "daemon_pid", getpid());
	json_int(&j, "threads", d->n_lanes);
	json_obj_begin(&j, "manager");
	json_str(&j, "endpoint", d->state == D_IDLE ? NULL : tunnel_where(t));
	json_str(&j, "version", t->server[0] ? t->server : NULL);
	json_uint(&j, "connected_for_s",
		  d->state == D_CONNECTED ? (loop_now_ms(d->loop) - d->connected_since_ms) / 1000 : 0);
	json_uint(&j, "reconnects", c->reconnects);
	json_str(&j, "transport", d->state == D_IDLE ? NULL : t->insecure ? "tcp-insecure" : "tls");
	status_tls(&j, d);
	json_obj_end(&j);
	json_obj_begin(&j, "vif");
	json_str(&j, "name", d->vif_up ? d->vif.name : NULL);
	snprintf(buf, sizeof(buf), "%s/%d", ip4_str(VIF_ADDR, ip), VIF_PREFIX);
	json_str(&j, "address", d->vif_up ? buf : NULL);
	json_uint(&j, "mtu", d->vif_up ? d->vif.mtu : 0);
	json_obj_end(&j);
	json_arr_begin(&j, "routes");
	if (d->vif_up) {
		for (int i = 0; i < ci->pod.n; i++)
			json_str(&j, NULL, cidr4_str(&ci->pod.v[i], buf));
		for (int i = 0; i < ci->svc.n; i++)
			json_str(&j, NULL, cidr4_str(&ci->svc.v[i], buf));
	}
	json_arr_end(&j);
	status_cluster(&j, d);
	json_obj_begin(&j, "flows");
	json_uint(&j, "tcp", st.n_tcp);
	json_uint(&j, "udp", d->dg.n_udp);
	json_uint(&j, "tcp_all", st.n_flows);
	json_uint(&j, "dialing", lanes_dialing(d));
	json_uint(&j, "dialing_peak", __atomic_load_n(&d->caps.dialing_peak, __ATOMIC_RELAXED));
	json_uint(&j, "waiting", t->n_waiting);
	json_obj_end(&j);
	/* each lane's share of the TCP flows (lane.h): what --threads spreads */
	json_arr_begin(&j, "lanes");
	for (int k = 0; k < d->n_lanes; k++) {
		const struct counters *lc = &d->lanes[k]->c;
		json_obj_begin(&j, NULL);
		json_uint(&j, "tcp_flows_total", __atomic_load_n(&lc->tcp_flows_total, __ATOMIC_RELAXED));
		json_uint(&j, "packets", __atomic_load_n(&lc->pkts_in, __ATOMIC_RELAXED));
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_begin(&j, "pool");
	json_int(&j, "idle", status_transports(d, TR_IDLE));
	json_int(&j, "connecting", status_transports(d, TR_CONNECTING));
	json_int(&j, "trunks", status_transports(d, TR_TRUNKS));
	json_obj_end(&j);
	status_counters(&j, c, &st);
	dnsplug_status_json(d, &j);
	intercepts_status_json(&d->ic, &j);
	status_loop_guard(&j, d, c);
	json_str(&j, "last_error", d->last_error[0] && d->state != D_CONNECTED ? d->last_error : NULL);
	json_obj_end(&j);
	json_finish(&j);
}

void status_write_text(struct daemon *d, FILE *fp)
{
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	const struct tunnel *t = &d->tun;
	struct counters cs, *c = &cs;
	struct lane_stats st;
	char ip[16], buf[20];
	uint64_t fails = 0;

	lanes_counters(d, c);
	lanes_stats(d, &st);
	if (d->state == D_IDLE) {
		fprintf(fp, "not connected%s%s\n", d->last_error[0] ? ": " : "", d->last_error);
		return;
	}
	fprintf(fp, "%-10s %s to %s (%s) over %s\n", "status:", state_name(d->state), tunnel_where(t),
		t->server[0] ? t->server : "?",
		t->insecure ? "plain TCP (--insecure, not encrypted)" : "TLS 1.3 (pinned certificate)");
	if (d->vif_up)
		fprintf(fp, "%-10s %s, %s/%d, mtu %u\n", "vif:", d->vif.name, ip4_str(VIF_ADDR, ip), VIF_PREFIX,
			d->vif.mtu);
	fprintf(fp, "%-10s", "routes:");
	for (int i = 0; i < ci->pod.n; i++)
		fprintf(fp, " %s", cidr4_str(&ci->pod.v[i], buf));
	for (int i = 0; i < ci->svc.n; i++)
		fprintf(fp, " %s", cidr4_str(&ci->svc.v[i], buf));
	fprintf(fp, "\n%-10s domain %s, dns %s (from the manager:", "cluster:", ci->domain,
		ci->dns ? ip4_str(ci->dns, ip) : "none");
	for (int i = 0; i < INFO_SRC_MAX_; i++)
		fprintf(fp, "%s %s %s", i ? "," : "", info_src_keys[i], info_source_name(ci->src[i]));
	fprintf(fp, ")");
	fprintf(fp, "\n%-10s %u tcp, %u udp active", "flows:", st.n_tcp, d->dg.n_udp);
	if (t->insecure)
		fprintf(fp, ", tcp on pooled connections (%d idle)", status_transports(d, TR_IDLE));
	else
		fprintf(fp, ", tcp as streams on %d of %d trunk connections", status_transports(d, TR_TRUNKS),
			TRUNKS * d->n_lanes);
	if (d->n_lanes > 1)
		fprintf(fp, ", %d threads", d->n_lanes);
	fprintf(fp, "\n");
	for (int s = 1; s < DIAL_STATUS_MAX_; s++)
		fails += c->dial_fail[s];
	fprintf(fp, "%-10s %llu dials, %llu failed (refused %llu, unreachable %llu, timeout %llu)\n", "dials:",
		(unsigned long long)c->dials, (unsigned long long)fails,
		(unsigned long long)c->dial_fail[DIAL_REFUSED], (unsigned long long)c->dial_fail[DIAL_UNREACHABLE],
		(unsigned long long)c->dial_fail[DIAL_TIMEOUT]);
	dnsplug_status_text(d, fp);
	intercepts_status_text(&d->ic, fp);
	fprintf(fp, "%-10s %s", "loop guard:", d->guard.enabled ? "on" : "OFF (--no-loop-guard)");
	fprintf(fp, ", blocked %llu tcp, %llu udp, %llu dns, %llu icmp", (unsigned long long)c->loops_tcp,
		(unsigned long long)c->loops_udp, (unsigned long long)c->loops_dns,
		(unsigned long long)c->loops_icmp);
	if (d->loop_last_src)
		fprintf(fp, " (last from %s)", ip4_str(d->loop_last_src, ip));
	fprintf(fp, "\n");
	if (c->reconnects || d->state == D_RECONNECTING)
		fprintf(fp, "%-10s %llu%s%s\n", "reconnects:", (unsigned long long)c->reconnects,
			d->state == D_RECONNECTING ? ", now reconnecting: " : "",
			d->state == D_RECONNECTING ? d->last_error : "");
	if (c->failed_down)
		fprintf(fp, "%-10s %llu connects, datagrams and pings refused while the tunnel was down\n",
			"refused:", (unsigned long long)c->failed_down);
}
