/* Plugging the DNS server into the laptop's resolver, chosen at connect:
 * systemd-resolved (per-link server and domains, gone with the link) when
 * it runs here, else /etc/resolv.conf (saved, rewritten, restored).  And
 * the DNS part of `status`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "daemon/dnssrv.h"
#include "daemon/resolved.h"

#define DOMAINS_MAX 64

static const char *mode_name(enum dns_mode m)
{
	switch (m) {
	case DNS_MODE_RESOLV_CONF: return "resolv.conf";
	case DNS_MODE_RESOLVED: return "systemd-resolved";
	default: return "off";
	}
}

/* The search list for short names, like a pod's: NS.svc.D, svc.D, D. */
static int search_list(const struct dnssrv *s, char out[3][DNS_NAME_STR_MAX])
{
	struct dns_name n = s->route.svc;

	for (int i = 0; i < 3; i++) {
		dnsmsg_name_str(&n, out[i]);
		dnsmsg_name_strip(&n, 1);
	}
	return 3;
}

/* Reverse zones (RFC 1035 3.5) covering a CIDR, at most 16 of them. */
static int reverse_zones(const struct cidr4 *c, char out[][DNS_NAME_STR_MAX], int max)
{
	int octets = (c->len + 7) / 8, n = 0;
	uint32_t count = octets ? 1u << (octets * 8 - c->len) : 0;

	if (!octets || count > 16)
		return 0;
	for (uint32_t i = 0; i < count && n < max; i++) {
		uint32_t a = c->addr + (i << (32 - octets * 8));
		size_t o = 0;
		for (int k = octets - 1; k >= 0; k--)
			o += (size_t)snprintf(out[n] + o, DNS_NAME_STR_MAX - o, "%u.", (a >> (24 - 8 * k)) & 255);
		snprintf(out[n] + o, DNS_NAME_STR_MAX - o, "in-addr.arpa");
		n++;
	}
	return n;
}

/* The suffixes whose names are routed to the cluster as they are. */
static int routed_domains(const struct dnssrv *s, char out[][DNS_NAME_STR_MAX], int max)
{
	const struct cidr_list *lists[] = { &s->route.svc_cidrs, &s->route.pod };
	int n = 0;

	dnsmsg_name_str(&s->route.domain, out[n++]);
	for (int i = 0; i < s->route.n_also && n < max; i++)
		dnsmsg_name_str(&s->route.also[i], out[n++]);
	for (size_t l = 0; l < 2; l++)
		for (int c = 0; c < lists[l]->n && n < max; c++)
			n += reverse_zones(&lists[l]->v[c], out + n, max - n);
	return n;
}

static void plug_off(struct dnssrv *s, const char *fmt, const char *arg)
{
	s->mode = DNS_MODE_OFF;
	snprintf(s->why_off, sizeof(s->why_off), fmt, arg);
}

/* resolv.conf mode: the file names us, the original is saved. */
static int plug_resolv_conf(struct dnssrv *s)
{
	char search[3][DNS_NAME_STR_MAX], saved[108], *orig = malloc(RESOLV_FILE_MAX + 1);
	char *text = malloc(RESOLV_OURS_MAX + 1);
	const char *sp[3] = { search[0], search[1], search[2] };
	struct resolv_render r = { .orig = &s->orig, .server = s->addr, .search = sp, .n_search = 3,
				   .saved_path = saved, .pid = getpid() };
	struct stat st;
	ssize_t n, tlen;
	int ret = -EINVAL;

	if (!orig || !text) {
		plug_off(s, "%s", "out of memory");
		goto out;
	}
	/* resolved's own file, while resolved is not usable here: writing it
	 * would change every namespace's resolver, not this one's. */
	if ((n = readlink(RESOLV_PATH, text, 255)) > 0) {
		text[n] = 0;
		if (strstr(text, "systemd/resolve")) {
			plug_off(s, "%s", RESOLV_PATH " is systemd-resolved's, but resolved cannot be used from here");
			goto out;
		}
	}
	n = file_read_small(RESOLV_PATH, orig, RESOLV_FILE_MAX + 1);
	if (n < 0 || n >= RESOLV_FILE_MAX) {
		plug_off(s, RESOLV_PATH " cannot be read or is too large: %s", n < 0 ? strerror((int)-n) : "over 64 KiB");
		goto out;
	}
	resolv_conf_parse(orig, (size_t)n, &s->orig);
	if (s->orig.ours) {
		plug_off(s, "%s", RESOLV_PATH " is subway's already (another namespace's daemon, or a copy it cannot restore)");
		goto out;
	}
	for (int i = 0; i < s->orig.n_ns; i++)
		if ((s->orig.ns[i] >> VIF_PREFIX) != (VIF_NET >> VIF_PREFIX))
			s->up[s->n_up++] = s->orig.ns[i];
	if (!s->n_up) {
		plug_off(s, "%s", "no IPv4 nameserver in " RESOLV_PATH " to send other names to");
		goto out;
	}
	search_list(s, search);
	resolv_saved_path(saved, sizeof(saved));
	r.orig_text = orig;
	r.orig_len = (size_t)n;
	r.netns = stat("/proc/self/ns/net", &st) == 0 ? (unsigned long)st.st_ino : 0;
	tlen = resolv_conf_render(&r, text, RESOLV_OURS_MAX + 1);
	if (tlen < 0 || (ret = resolv_install(orig, (size_t)n, text, (size_t)tlen)) < 0) {
		plug_off(s, "cannot rewrite " RESOLV_PATH ": %s", strerror(tlen < 0 ? ENOSPC : -ret));
		goto out;
	}
	s->mode = DNS_MODE_RESOLV_CONF;
	ret = 0;
out:
	free(orig);
	free(text);
	return ret;
}

/* systemd-resolved mode: DNS server and domains on the VIF link. */
static int plug_resolved(struct dnssrv *s)
{
	char search[3][DNS_NAME_STR_MAX], routed[DOMAINS_MAX][DNS_NAME_STR_MAX], ns[DNS_NAME_STR_MAX + 1];
	struct resolved_domain doms[DOMAINS_MAX + 8];
	int n = 0, nr = routed_domains(s, routed, DOMAINS_MAX), ret;
	const uint8_t *p;
	uint8_t len;

	search_list(s, search);
	for (int i = 0; i < 3; i++)
		doms[n++] = (struct resolved_domain){ search[i], false };
	/* NAME.NS and NAME.NS.svc: routing-only domains for the namespace and svc. */
	dnsmsg_name_label(&s->route.svc, 0, &p, &len);
	snprintf(ns, sizeof(ns), "%.*s", (int)len, (const char *)p);
	doms[n++] = (struct resolved_domain){ ns, true };
	doms[n++] = (struct resolved_domain){ "svc", true };
	doms[n++] = (struct resolved_domain){ "pod", true };
	for (int i = 1; i < nr; i++) /* routed[0] is the cluster domain, a search domain already */
		doms[n++] = (struct resolved_domain){ routed[i], true };
	ret = resolved_plug(s->d->vif.ifindex, s->addr, doms, n, s->why_off, sizeof(s->why_off));
	if (ret < 0) {
		s->mode = DNS_MODE_OFF;
		return ret;
	}
	s->resolved_ifindex = s->d->vif.ifindex;
	s->mode = DNS_MODE_RESOLVED;
	return 0;
}

static void plug_progress(struct dnssrv *s)
{
	struct daemon *d = s->d;
	char ip[16], search[3][DNS_NAME_STR_MAX], also[DNS_NAME_STR_MAX], names[600] = "";

	if (s->mode == DNS_MODE_OFF) {
		daemon_progress(d, "DNS: off (%s)", s->why_off);
		return;
	}
	search_list(s, search);
	for (int i = 0; i < s->route.n_also; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), ", *.%s",
			 dnsmsg_name_str(&s->route.also[i], also));
	daemon_progress(d, "DNS %s:%d via %s: *.%s%s and short names (search %s) resolve in the cluster",
			ip4_str(s->addr, ip), DNS_PORT, mode_name(s->mode), search[2], names, search[0]);
}

static int plug_route_init(struct dnssrv *s)
{
	struct daemon *d = s->d;
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	char bad[256];

	if (dnsroute_cfg_init(&s->route, ci->domain[0] ? ci->domain : "cluster.local",
			      d->dns_opts.ns[0] ? d->dns_opts.ns : "default") < 0)
		return -EINVAL;
	s->route.pod = ci->pod;
	s->route.svc_cidrs = ci->svc;
	if (dnsroute_suffixes_parse(d->dns_opts.also_proxy, s->route.also, &s->route.n_also, bad) < 0 ||
	    dnsroute_suffixes_parse(d->dns_opts.never_proxy, s->route.never, &s->route.n_never, bad) < 0)
		return -EINVAL;
	return 0;
}

void dnsplug_start(struct daemon *d)
{
	struct dnssrv *s = calloc(1, sizeof(*s));
	char ip[16];
	int ret;

	if (!s) {
		daemon_progress(d, "DNS: off (out of memory)");
		return;
	}
	d->dns = s;
	s->d = d;
	s->addr = VIF_ADDR;
	s->udp_fd = -1;
	for (int k = 0; k < DNS_UP_SOCKS; k++)
		s->up_fd[k] = -1;
	if (plug_route_init(s) < 0)
		plug_off(s, "bad cluster domain '%s'", tunnel_info(&d->tun)->domain);
	else if (d->dns_opts.off)
		plug_off(s, "%s", "--no-dns");
	else if ((ret = dnssrv_open(s)) < 0) {
		snprintf(s->why_off, sizeof(s->why_off), "cannot serve DNS on %s:%d: %s", ip4_str(s->addr, ip),
			 DNS_PORT, strerror(-ret));
		dnssrv_close(s);
	} else if (resolved_detect(s->why_off, sizeof(s->why_off)) == 1) {
		plug_resolved(s);
	} else {
		plug_resolv_conf(s);
	}
	if (s->mode == DNS_MODE_OFF && s->why_off[0] == 0)
		plug_off(s, "%s", "not plugged in");
	plug_progress(s);
}

void dnsplug_stop(struct daemon *d)
{
	struct dnssrv *s = d->dns;
	int ret;

	if (!s)
		return;
	if (s->mode == DNS_MODE_RESOLV_CONF) {
		ret = resolv_restore();
		if (ret < 0)
			log_err("cannot restore %s: %s", RESOLV_PATH, strerror(-ret));
		else if (ret > 0)
			log_info("%s restored", RESOLV_PATH);
	} else if (s->mode == DNS_MODE_RESOLVED) {
		resolved_unplug(s->resolved_ifindex);
	}
	dnssrv_close(s);
	free(s);
	d->dns = NULL;
}

/* ---- status ---- */

static void json_names(struct json *j, const char *key, char names[][DNS_NAME_STR_MAX], int n)
{
	json_arr_begin(j, key);
	for (int i = 0; i < n; i++)
		json_str(j, NULL, names[i]);
	json_arr_end(j);
}

static void status_lists(struct dnssrv *s, struct json *j)
{
	char list[DOMAINS_MAX][DNS_NAME_STR_MAX], ip[16];
	int n;

	n = routed_domains(s, list, DOMAINS_MAX);
	json_names(j, "routed_domains", list, s->udp_fd < 0 ? 0 : n);
	n = search_list(s, list);
	json_names(j, "search", list, s->mode == DNS_MODE_OFF ? 0 : n);
	for (n = 0; n < s->route.n_never; n++)
		dnsmsg_name_str(&s->route.never[n], list[n]);
	json_names(j, "never_proxy", list, n);
	json_arr_begin(j, "upstream");
	for (int i = 0; i < s->n_up; i++)
		json_str(j, NULL, ip4_str(s->up[i], ip));
	json_arr_end(j);
}

void dnsplug_status_json(struct daemon *d, struct json *j)
{
	struct dnssrv *s = d->dns;
	char buf[32], ip[16];
	const uint8_t *p;
	uint8_t len;

	json_obj_begin(j, "dns");
	json_str(j, "mode", s ? mode_name(s->mode) : "off");
	snprintf(buf, sizeof(buf), "%s:%d", s ? ip4_str(s->addr, ip) : "", DNS_PORT);
	json_str(j, "server", s && s->udp_fd >= 0 ? buf : NULL);
	if (s) {
		dnsmsg_name_label(&s->route.svc, 0, &p, &len);
		snprintf(buf, sizeof(buf), "%.*s", (int)MIN(len, 31), (const char *)p);
	}
	json_str(j, "namespace", s ? buf : d->dns_opts.ns[0] ? d->dns_opts.ns : "default");
	if (s)
		status_lists(s, j);
	json_str(j, "error", s && s->mode == DNS_MODE_OFF ? s->why_off : NULL);
	json_obj_begin(j, "counters");
	json_uint(j, "queries", s ? s->c.queries : 0);
	json_uint(j, "cluster", s ? s->c.cluster : 0);
	json_uint(j, "cache_hits", s ? s->c.cache_hits : 0);
	json_uint(j, "forwarded", s ? s->c.forwarded : 0);
	json_uint(j, "failures", s ? s->c.failures : 0);
	json_uint(j, "loops_blocked", s ? s->c.loops : 0);
	json_uint(j, "tcp", s ? s->c.tcp : 0);
	json_uint(j, "truncated", s ? s->c.truncated : 0);
	json_obj_end(j);
	json_obj_begin(j, "cache");
	json_uint(j, "entries", s ? dnscache_entries(s->cache) : 0);
	json_uint(j, "bytes", s ? dnscache_bytes(s->cache) : 0);
	json_obj_end(j);
	json_str(j, "last_loop_source", s && s->c.loops ? ip4_str(s->last_loop_src, ip) : NULL);
	json_uint(j, "in_flight", s ? s->n_used : 0);
	json_obj_end(j);
}

void dnsplug_status_text(struct daemon *d, FILE *fp)
{
	struct dnssrv *s = d->dns;
	char ip[16], search[3][DNS_NAME_STR_MAX];

	if (!s)
		return;
	if (s->mode == DNS_MODE_OFF) {
		fprintf(fp, "%-10s off (%s)\n", "dns:", s->why_off);
		return;
	}
	search_list(s, search);
	fprintf(fp, "%-10s %s:%d via %s, search %s; %llu queries: %llu cluster, %llu cached, %llu forwarded, "
		    "%llu failed, %llu loops blocked\n", "dns:", ip4_str(s->addr, ip), DNS_PORT, mode_name(s->mode),
		search[0], (unsigned long long)s->c.queries, (unsigned long long)s->c.cluster,
		(unsigned long long)s->c.cache_hits, (unsigned long long)s->c.forwarded,
		(unsigned long long)s->c.failures, (unsigned long long)s->c.loops);
}
