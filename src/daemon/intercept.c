/* Intercepts on the laptop (intercept.h). */
#include "daemon/intercept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/paths.h"
#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "net/dgbridge.h"
#include "net/sock.h"
#include "proto/auth.h"
#include "proto/ctlmsg.h"

#define DICEPT_TICK_MS 1000

static const char *const state_names[] = { "ASKED", "ACTIVE", "WAITING", "INACTIVE" };
static const char *const mode_names[] = { "", "global", "personal", "mirror" };

/* A connection the manager carries to one of the laptop's ports. */
struct iflow {
	struct intercepts *is;
	struct dicept *ic;  /* NULL once the intercept is gone */
	struct carrier car;
	int fd;             /* the local connection; -1 once the carrier has it */
	struct dgbridge *dg; /* UDP: datagrams between the stream and the local port */
	struct list link;   /* is->flows */
};

static struct dicept *dicept_by_name(struct intercepts *is, const char *name)
{
	struct list *i;

	for (i = is->list.next; i != &is->list; i = i->next)
		if (!strcmp(list_entry(i, struct dicept, link)->req.name, name))
			return list_entry(i, struct dicept, link);
	return NULL;
}

/* Sends a frame on the control connection; -ENOTCONN without a session. */
static int dicept_send(struct intercepts *is, const uint8_t *frame, ssize_t n)
{
	return n < 0 ? (int)n : tunnel_send(&is->d->tun, frame, (size_t)n);
}

static int dicept_ask(struct intercepts *is, struct dicept *ic)
{
	uint8_t buf[2048];

	ic->asked_ms = loop_now_ms(is->d->loop);
	return dicept_send(is, buf, msg_intercept_encode(buf, sizeof(buf), &ic->req));
}

/* The answer for `subway intercept`: one JSON object on its line. */
static void dicept_describe(const struct dicept *ic, char *out, size_t size)
{
	FILE *fp = fmemopen(out, size, "w");
	struct json j;
	char ip[16], local[24];

	if (!fp) {
		snprintf(out, size, "{}");
		return;
	}
	snprintf(local, sizeof(local), "%s:%u", ip4_str(ic->req.local_addr, ip), ic->req.local_port);
	json_init(&j, fp, false);
	json_obj_begin(&j, NULL);
	json_str(&j, "name", ic->req.name);
	json_str(&j, "namespace", ic->req.ns);
	json_str(&j, "workload", ic->req.workload);
	json_uint(&j, "port", ic->port);
	json_str(&j, "local", local);
	json_str(&j, "mode", mode_names[ic->req.mode]);
	json_str(&j, "state", state_names[ic->state]);
	json_uint(&j, "pods", ic->pods);
	json_obj_end(&j);
	fclose(fp);
}

static void dicept_free(struct intercepts *is, struct dicept *ic)
{
	struct list *i;

	for (i = is->flows.next; i != &is->flows; i = i->next)
		if (list_entry(i, struct iflow, link)->ic == ic)
			list_entry(i, struct iflow, link)->ic = NULL;
	list_del(&ic->link);
	is->n--;
	free(ic);
}

/* ---- the intercepts file ---- */

/* /run/subway/daemon-<netns>.intercepts: the client id and the intercepts
 * the manager accepted, each as its INTERCEPT frame in hex, so that a
 * daemon started after one that died takes them back (resume: only while
 * the manager still holds them).  Rewritten whole on each change (a few
 * lines, on tmpfs); gone when there is nothing to take back. */
static void intercepts_save(struct intercepts *is)
{
	char path[128], tmp[140], hex[2 * 2048 + 1];
	uint8_t buf[2048];
	struct list *i;
	FILE *fp;
	int n = 0, fd;

	if (paths_daemon_file("intercepts", path, sizeof(path)) < 0)
		return;
	for (i = is->list.next; i != &is->list; i = i->next)
		n += list_entry(i, struct dicept, link)->id || list_entry(i, struct dicept, link)->req.resume;
	if (!n) {
		unlink(path);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); /* the client id is a secret */
	if (fd < 0 || !(fp = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		log_warn("%s: %s (intercepts will not survive the daemon)", tmp, strerror(errno));
		return;
	}
	fprintf(fp, "client %s\n", hex_encode(is->client, sizeof(is->client), hex));
	for (i = is->list.next; i != &is->list; i = i->next) {
		const struct dicept *ic = list_entry(i, struct dicept, link);
		struct msg_intercept req = ic->req;
		ssize_t len;
		req.resume = 0;
		if ((ic->id || ic->req.resume) && (len = msg_intercept_encode(buf, sizeof(buf), &req)) > 0)
			fprintf(fp, "intercept %s\n", hex_encode(buf, (size_t)len, hex));
	}
	if (fclose(fp) != 0 || rename(tmp, path) < 0) {
		log_warn("%s: %s (intercepts will not survive the daemon)", path, strerror(errno));
		unlink(tmp);
	}
}

/* One "intercept HEX" line: asked again at the next session, to resume. */
static void intercepts_load_one(struct intercepts *is, const char *hex)
{
	uint8_t buf[2048];
	struct frame_hdr h;
	size_t n = strlen(hex) / 2;
	struct dicept *ic;

	if (n > sizeof(buf) || hex_decode(hex, buf, n) != -1 || frame_hdr_decode(buf, n, sizeof(buf), &h) != FRAME_HDR_LEN ||
	    h.type != FT_INTERCEPT || FRAME_HDR_LEN + h.len != n || is->n >= DICEPT_MAX ||
	    !(ic = calloc(1, sizeof(*ic))))
		return;
	if (msg_intercept_decode(buf + FRAME_HDR_LEN, h.len, &ic->req) < 0 || dicept_by_name(is, ic->req.name)) {
		free(ic);
		return;
	}
	memcpy(ic->req.client, is->client, sizeof(is->client));
	ic->req.resume = 1;
	list_add_tail(&is->list, &ic->link);
	is->n++;
	log_info("intercept '%s' of %s/%s from before: taking it back", ic->req.name, ic->req.ns, ic->req.workload);
}

/* The file of a daemon that died: its client id and intercepts.  0 when
 * there is none (or it is unreadable: a fresh id then). */
static int intercepts_load(struct intercepts *is)
{
	char path[128], line[2 * 2048 + 32];
	bool have_client = false;
	FILE *fp;

	if (paths_daemon_file("intercepts", path, sizeof(path)) < 0 || !(fp = fopen(path, "re")))
		return 0;
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "client ", 7) && strlen(line + 7) == 2 * sizeof(is->client))
			have_client = hex_decode(line + 7, is->client, sizeof(is->client)) == -1;
		else if (have_client && !strncmp(line, "intercept ", 10))
			intercepts_load_one(is, line + 10);
	}
	fclose(fp);
	return have_client;
}

/* ---- requests from the control socket ---- */

/* The request's filter: "name:value" headers, a path prefix. */
static void dicept_filter(const struct ctl_req *req, struct icept_filter *f)
{
	for (int i = 0; i < CTL_HEADERS_MAX; i++) {
		const char *colon = strchr(req->header[i], ':');
		if (!req->header[i][0] || !colon)
			continue;
		snprintf(f->hname[f->n_headers], ICEPT_HNAME_MAX, "%.*s", (int)(colon - req->header[i]), req->header[i]);
		snprintf(f->hvalue[f->n_headers], ICEPT_HVALUE_MAX, "%s", colon + 1 + strspn(colon + 1, " "));
		f->n_headers++;
	}
	snprintf(f->path_prefix, sizeof(f->path_prefix), "%s", req->path);
}

static int dicept_add(struct intercepts *is, const struct ctl_req *req, uint32_t token, char *msg, size_t len)
{
	const struct msg_cluster_info *ci = tunnel_info(&is->d->tun);
	struct dicept *ic = dicept_by_name(is, req->name);

	if (cidr_list_contains(&ci->pod, req->local.addr) || cidr_list_contains(&ci->svc, req->local.addr)) {
		snprintf(msg, len, "the local address is in the cluster's networks: it would loop");
		return -EINVAL;
	}
	if (!ic && is->n >= DICEPT_MAX) {
		snprintf(msg, len, "this laptop holds %d intercepts already: leave one first", DICEPT_MAX);
		return -ENOSPC;
	}
	if (!ic && !(ic = calloc(1, sizeof(*ic)))) {
		snprintf(msg, len, "out of memory");
		return -ENOMEM;
	}
	if (!ic->link.next) {
		list_add_tail(&is->list, &ic->link);
		is->n++;
	}
	ic->req = (struct msg_intercept){ .local_addr = req->local.addr, .local_port = req->local.port,
					  .mode = req->mode };
	snprintf(ic->req.name, sizeof(ic->req.name), "%s", req->name);
	snprintf(ic->req.ns, sizeof(ic->req.ns), "%s", req->ns[0] ? req->ns : "default");
	snprintf(ic->req.workload, sizeof(ic->req.workload), "%s", req->workload);
	snprintf(ic->req.port, sizeof(ic->req.port), "%s", req->port);
	snprintf(ic->req.holder, sizeof(ic->req.holder), "%s", req->holder);
	dicept_filter(req, &ic->req.filter);
	memcpy(ic->req.client, is->client, sizeof(ic->req.client));
	ic->token = token;
	ic->id = 0; /* asked anew: held again once the manager says so */
	ic->state = 0;
	if (dicept_ask(is, ic) < 0) {
		snprintf(msg, len, "cannot ask the manager (%s): connected?",
			 tunnel_up(&is->d->tun) ? "the tunnel's queue is full" : "no session");
		dicept_free(is, ic);
		return -ENOTCONN;
	}
	return 0;
}

static int dicept_leave(struct intercepts *is, const struct ctl_req *req, char *msg, size_t len)
{
	struct dicept *ic = dicept_by_name(is, req->name);
	struct msg_query q = { 0 };
	uint8_t buf[128];

	if (!ic) {
		snprintf(msg, len, "no intercept named '%s' here (subway status)", req->name);
		return -ENOENT;
	}
	snprintf(q.text, sizeof(q.text), "%s", ic->req.name);
	dicept_send(is, buf, msg_query_encode(buf, sizeof(buf), FT_LEAVE, &q)); /* gone anyway */
	snprintf(msg, len, "left %s (%s/%s port %u)", ic->req.name, ic->req.ns, ic->req.workload, ic->port);
	dicept_free(is, ic);
	intercepts_save(is);
	return 1;
}

/* LIST and ENV: asked of the manager, answered when it replies. */
static int dicept_query(struct intercepts *is, uint8_t type, const char *text, uint32_t token, char *msg,
			size_t len)
{
	struct msg_query q = { .id = ++is->next_q };
	uint8_t buf[128];
	int slot = -1;

	for (int i = 0; i < DICEPT_QUERIES && slot < 0; i++)
		if (!is->q[i].type)
			slot = i;
	if (slot < 0) {
		snprintf(msg, len, "busy: too many requests waiting for the manager");
		return -EBUSY;
	}
	snprintf(q.text, sizeof(q.text), "%s", text);
	if (dicept_send(is, buf, msg_query_encode(buf, sizeof(buf), type, &q)) < 0) {
		snprintf(msg, len, "not connected to the manager");
		return -ENOTCONN;
	}
	is->q[slot].id = q.id;
	is->q[slot].token = token;
	is->q[slot].type = type;
	is->q[slot].at = loop_now_ms(is->d->loop);
	return 0;
}

int intercepts_request(struct intercepts *is, const struct ctl_req *req, uint32_t token, char *msg, size_t len)
{
	switch (req->verb) {
	case CTL_INTERCEPT:
		return dicept_add(is, req, token, msg, len);
	case CTL_LEAVE:
		return dicept_leave(is, req, msg, len);
	case CTL_LIST:
		return dicept_query(is, FT_LIST, req->ns, token, msg, len);
	case CTL_ENV:
		if (!dicept_by_name(is, req->name)) {
			snprintf(msg, len, "no intercept named '%s' here", req->name);
			return -ENOENT;
		}
		return dicept_query(is, FT_ENV, req->name, token, msg, len);
	default:
		snprintf(msg, len, "not an intercept request");
		return -EINVAL;
	}
}

/* ---- the manager's frames ---- */

static void dicept_on_result(struct intercepts *is, const struct msg_intercept_result *r)
{
	struct dicept *ic = dicept_by_name(is, r->name);
	uint32_t token;

	if (!ic)
		return;
	token = ic->token;
	ic->token = 0;
	if (r->status != ICEPT_OK) {
		log_info("intercept '%s' %s: %s", ic->req.name, ic->req.resume ? "not taken back" : "refused",
			 r->text);
		ctl_answer(is->d->ctl, token, false, r->text[0] ? r->text : "refused by the manager");
		dicept_free(is, ic);
		intercepts_save(is);
		return;
	}
	if (ic->req.resume)
		log_info("intercept '%s' taken back", ic->req.name);
	ic->req.resume = 0; /* held now: asked again after a reconnect, it is made anew if need be */
	ic->id = r->id;
	ic->port = r->port;
	ic->proto = r->proto;
	intercepts_save(is);
	ic->token = token; /* answered with its first state: ACTIVE once the agents took it */
	if (!ic->state)
		ic->state = ICEPT_WAITING;
}

/* The answer to `subway intercept` once it is held. */
static void dicept_answer(struct intercepts *is, struct dicept *ic)
{
	char text[1024];

	dicept_describe(ic, text, sizeof(text));
	ctl_answer(is->d->ctl, ic->token, true, text);
	ic->token = 0;
}

static void dicept_on_state(struct intercepts *is, const struct msg_intercept_state *st)
{
	struct dicept *ic = dicept_by_name(is, st->name);

	if (!ic)
		return;
	if (ic->state != st->state)
		log_info("intercept '%s': %s (%u pod(s))", ic->req.name, state_names[st->state], st->pods);
	ic->state = st->state;
	ic->pods = st->pods;
	ic->connections = st->connections;
	ic->requests = st->requests;
	ic->dropped = st->dropped;
	if (ic->token && ic->id && st->state != ICEPT_WAITING)
		dicept_answer(is, ic);
}

/* An ENV reply: "KEY=VALUE\0..." as one line, each entry percent-encoded
 * (any byte a value may hold survives: newlines, quotes, '='), entries
 * separated by spaces.  out holds 3 * len + 1 bytes. */
static void dicept_env_line(const uint8_t *p, size_t len, char *out, size_t size)
{
	size_t i = 0, o = 0;

	out[0] = 0;
	while (i < len) {
		size_t n = strlen((const char *)p + i);
		ssize_t w = str_pct_encode(p + i, n, out + o, size - o);
		if (w < 0)
			break;
		o += (size_t)w;
		i += n + 1;
		if (i < len && o + 1 < size) {
			out[o++] = ' ';
			out[o] = 0;
		}
	}
}

static void dicept_on_reply(struct intercepts *is, uint8_t type, const struct msg_query *r)
{
	char *text;

	for (int i = 0; i < DICEPT_QUERIES; i++) {
		if (is->q[i].type + 1 != type || is->q[i].id != r->id) /* LIST_REPLY = LIST + 1, ENV_REPLY = ENV + 1 */
			continue;
		is->q[i].type = 0;
		if (type == FT_LIST_REPLY) {
			text = strndup((const char *)r->data, r->len);
		} else {
			text = malloc(3 * (size_t)r->len + 1);
			if (text)
				dicept_env_line(r->data, r->len, text, 3 * (size_t)r->len + 1);
		}
		ctl_answer(is->d->ctl, is->q[i].token, text != NULL, text ? text : "out of memory");
		free(text);
		return;
	}
}

int intercepts_frame(struct intercepts *is, uint8_t type, const uint8_t *p, size_t len)
{
	struct msg_intercept_result r;
	struct msg_intercept_state st;
	struct msg_query q;

	switch (type) {
	case FT_INTERCEPT_RESULT:
		if (msg_intercept_result_decode(p, len, &r) < 0)
			return -EBADMSG;
		dicept_on_result(is, &r);
		return 0;
	case FT_INTERCEPT_STATE:
		if (msg_intercept_state_decode(p, len, &st) < 0)
			return -EBADMSG;
		dicept_on_state(is, &st);
		return 0;
	case FT_LIST_REPLY:
	case FT_ENV_REPLY:
		if (msg_query_decode(type, p, len, &q) < 0)
			return -EBADMSG;
		dicept_on_reply(is, type, &q);
		return 0;
	}
	return -EBADMSG;
}

void intercepts_session_up(struct intercepts *is)
{
	struct list *i;

	for (i = is->list.next; i != &is->list; i = i->next)
		dicept_ask(is, list_entry(i, struct dicept, link));
}

/* Answers that did not come in time. */
static void iflow_free(struct iflow *f, bool rst);

static void dicept_tick(struct loop *l, struct loop_timer *t)
{
	struct intercepts *is = t->arg;
	uint64_t now = loop_now_ms(l);
	struct list *i, *next;

	list_for_each_safe(i, next, &is->list) {
		struct dicept *ic = list_entry(i, struct dicept, link);
		if (ic->token && ic->id && now - ic->asked_ms > DICEPT_SETTLE_MS) {
			dicept_answer(is, ic); /* WAITING: no agent took it yet */
		} else if (ic->token && !ic->id && now - ic->asked_ms > DICEPT_ANSWER_MS) {
			ctl_answer(is->d->ctl, ic->token, false, "the manager did not answer in time");
			dicept_free(is, ic);
		}
	}
	list_for_each_safe(i, next, &is->flows) { /* UDP flows end when idle */
		struct iflow *f = list_entry(i, struct iflow, link);
		if (f->dg && now - f->dg->last_ms > DICEPT_UDP_IDLE_MS)
			iflow_free(f, false);
	}
	for (int k = 0; k < DICEPT_QUERIES; k++)
		if (is->q[k].type && now - is->q[k].at > DICEPT_ANSWER_MS) {
			is->q[k].type = 0;
			ctl_answer(is->d->ctl, is->q[k].token, false, "the manager did not answer in time");
		}
	loop_timer_arm(l, &is->timer, DICEPT_TICK_MS, dicept_tick, is);
}

/* ---- connections carried to the laptop's ports ---- */

static void iflow_free(struct iflow *f, bool rst)
{
	bool bound = f->car.state == CARRIER_BOUND;

	if (f->dg) {
		dgbridge_fini(f->dg);
		free(f->dg);
		f->dg = NULL;
	}
	carrier_reset(&f->car);
	if (bound)
		f->fd = f->car.fd; /* ours again, out of the loop */
	if (f->fd >= 0) {
		loop_del(f->is->d->loop, f->fd);
		if (rst)
			sock_linger_rst(f->fd);
		close(f->fd);
	}
	list_del(&f->link);
	free(f);
}

static void iflow_result(struct carrier *c, uint8_t status)
{
	(void)c;
	(void)status; /* inbound: the far side opened it, nothing of ours to answer */
}

static void iflow_done(struct carrier *c, int err)
{
	struct iflow *f = c->owner;

	if (f->ic) {
		f->ic->bytes[0] += c->bytes[1];
		f->ic->bytes[1] += c->bytes[0];
	}
	f->fd = c->fd; /* ours again: closed below */
	iflow_free(f, err != 0);
}

static const struct carrier_ops iflow_ops = {
	.result = iflow_result,
	.done = iflow_done,
};

/* The local connect is over: the manager hears how, and bytes flow. */
static void iflow_on_connect(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct iflow *f = arg;
	int r = sock_connect_result(fd);

	if (r == 0 && !(events & LOOP_OUT))
		return;
	loop_del(l, fd);
	if (r < 0) {
		carrier_answer(&f->car, r == -ECONNREFUSED ? DIAL_REFUSED : DIAL_UNREACHABLE);
		iflow_free(f, false);
		return;
	}
	sock_nodelay(fd);
	if (carrier_answer(&f->car, DIAL_OK) < 0 || carrier_bind(&f->car, fd) < 0) {
		iflow_free(f, true);
		return;
	}
	f->fd = -1;
}

/* The stream ended on its far side: so does the flow. */
static void iflow_dg_closed(struct dgbridge *b, void *arg)
{
	(void)b;
	iflow_free(arg, false);
}

/* A UDP intercept's flow (one client of the pods): a UDP socket connected
 * to the local port, datagrams framed on the stream (net/dgbridge.h). */
static uint8_t iflow_udp(struct intercepts *is, struct dicept *ic, const struct carrier_offer *o)
{
	struct iflow *f = calloc(1, sizeof(*f));
	int sp[2] = { -1, -1 }, udp = -1;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(o->dial.addr),
				  .sin_port = htons(o->dial.port) };

	if (!f || carrier_accept(&f->car, o, &iflow_ops, f) < 0) {
		free(f);
		return DIAL_ERROR;
	}
	if (!(f->dg = calloc(1, sizeof(*f->dg))) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0 ||
	    (udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(udp, (struct sockaddr *)&to, sizeof(to)) < 0 ||
	    dgbridge_init(f->dg, is->d->loop, sp[1], udp, true, NULL, iflow_dg_closed, f) < 0) {
		carrier_reset(&f->car);
		free(f->dg);
		free(f);
		for (int k = 0; k < 2; k++)
			if (sp[k] >= 0)
				close(sp[k]);
		if (udp >= 0)
			close(udp);
		return DIAL_ERROR;
	}
	f->is = is;
	f->ic = ic;
	f->fd = -1;
	list_add(&is->flows, &f->link);
	if (carrier_answer(&f->car, DIAL_OK) < 0 || carrier_bind(&f->car, sp[0]) < 0) {
		close(sp[0]);
		iflow_free(f, true);
	}
	return DIAL_OK; /* answered */
}

/* The manager opens a stream toward the laptop: only to the local address
 * one of our intercepts asked for. */
static uint8_t intercepts_inbound(void *arg, const struct carrier_offer *o)
{
	struct intercepts *is = arg;
	struct dicept *ic = NULL;
	struct iflow *f;
	struct list *i;
	int fd;

	for (i = is->list.next; i != &is->list && !ic; i = i->next) {
		struct dicept *k = list_entry(i, struct dicept, link);
		if (k->id && k->req.local_addr == o->dial.addr && k->req.local_port == o->dial.port)
			ic = k;
	}
	if (!ic)
		return DIAL_FORBIDDEN;
	if (ic->proto == IPPROTO_UDP)
		return iflow_udp(is, ic, o);
	fd = sock_connect_tcp(o->dial.addr, o->dial.port, 0);
	if (fd < 0)
		return fd == -ECONNREFUSED ? DIAL_REFUSED : DIAL_UNREACHABLE;
	if (!(f = calloc(1, sizeof(*f))) || carrier_accept(&f->car, o, &iflow_ops, f) < 0 ||
	    loop_add(is->d->loop, fd, LOOP_OUT, iflow_on_connect, f) < 0) {
		if (f && !carrier_closed(&f->car))
			carrier_reset(&f->car);
		free(f);
		close(fd);
		return DIAL_ERROR;
	}
	f->is = is;
	f->ic = ic;
	f->fd = fd;
	list_add(&is->flows, &f->link);
	return DIAL_OK;
}

/* ---- life ---- */

int intercepts_init(struct intercepts *is, struct daemon *d)
{
	int r;

	*is = (struct intercepts){ .d = d };
	list_init(&is->list);
	list_init(&is->flows);
	if (!intercepts_load(is) && (r = auth_random(is->client, sizeof(is->client))) < 0)
		return r; /* an id another laptop could take: not without randomness */
	tunnel_set_inbound(&d->tun, intercepts_inbound, is);
	loop_timer_arm(d->loop, &is->timer, DICEPT_TICK_MS, dicept_tick, is);
	return 0;
}

void intercepts_fini(struct intercepts *is)
{
	if (!is->d)
		return;
	while (!list_empty(&is->list)) {
		struct dicept *ic = list_first(&is->list, struct dicept, link);
		struct msg_query q = { 0 };
		uint8_t buf[128];
		snprintf(q.text, sizeof(q.text), "%s", ic->req.name);
		dicept_send(is, buf, msg_query_encode(buf, sizeof(buf), FT_LEAVE, &q));
		dicept_free(is, ic);
	}
	intercepts_save(is); /* none left: the file goes */
	while (!list_empty(&is->flows))
		iflow_free(list_first(&is->flows, struct iflow, link), true);
	loop_timer_cancel(is->d->loop, &is->timer);
	tunnel_set_inbound(&is->d->tun, NULL, NULL);
}

/* ---- status ---- */

void intercepts_status_json(const struct intercepts *is, struct json *j)
{
	const struct list *i;
	char ip[16], local[24];

	json_arr_begin(j, "intercepts");
	for (i = is->list.next; is->d && i != &is->list; i = i->next) {
		const struct dicept *ic = list_entry(i, struct dicept, link);
		snprintf(local, sizeof(local), "%s:%u", ip4_str(ic->req.local_addr, ip), ic->req.local_port);
		json_obj_begin(j, NULL);
		json_str(j, "name", ic->req.name);
		json_str(j, "namespace", ic->req.ns);
		json_str(j, "workload", ic->req.workload);
		json_uint(j, "port", ic->port);
		json_str(j, "local", local);
		json_str(j, "mode", mode_names[ic->req.mode]);
		json_str(j, "state", tunnel_up(&is->d->tun) ? state_names[ic->state] : "INACTIVE");
		json_uint(j, "pods", ic->pods);
		json_uint(j, "connections", ic->connections);
		json_uint(j, "requests", ic->requests);
		json_uint(j, "dropped", ic->dropped);
		json_uint(j, "bytes_in", ic->bytes[0]);
		json_uint(j, "bytes_out", ic->bytes[1]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

void intercepts_status_text(const struct intercepts *is, FILE *fp)
{
	const struct list *i;
	char ip[16];

	for (i = is->list.next; is->d && i != &is->list; i = i->next) {
		const struct dicept *ic = list_entry(i, struct dicept, link);
		fprintf(fp, "%-10s %s: %s/%s port %u -> %s:%u, %s, %s on %u pod(s), %llu connections, %llu requests\n",
			"intercept:", ic->req.name, ic->req.ns, ic->req.workload, ic->port,
			ip4_str(ic->req.local_addr, ip), ic->req.local_port, mode_names[ic->req.mode],
			tunnel_up(&is->d->tun) ? state_names[ic->state] : "INACTIVE", ic->pods,
			(unsigned long long)ic->connections, (unsigned long long)ic->requests);
	}
}
