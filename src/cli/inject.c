/* The agent's JSON patches (inject.h): pure, from the parsed workload. */
#include "cli/inject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define POD_SPEC "/spec/template/spec"

/* ---- the workload ---- */

bool inject_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > INJECT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !((c == '-' || c == '.') && i > 0 && i + 1 < n))
			return false;
	}
	return true;
}

static bool is_kind(const char *k, const char *want)
{
	return k && (want ? !strcmp(k, want) : !strcmp(k, "Deployment") || !strcmp(k, "StatefulSet"));
}

static const struct jval *find_one(const struct jval *o, const char *kind, const char *name, const char *ns)
{
	const struct jval *meta = jval_get(o, "metadata");
	const char *ons = jval_str(jval_get(meta, "namespace"));

	if (!is_kind(jval_str(jval_get(o, "kind")), kind) || !jval_str(jval_get(meta, "name")) ||
	    strcmp(jval_str(jval_get(meta, "name")), name) || (ns && ons && strcmp(ns, ons)))
		return NULL;
	return o;
}

/* "Deployment/a, StatefulSet/b" of what the document holds. */
static void list_workloads(const struct jval *items, char *out, size_t size)
{
	size_t off = 0;

	out[0] = 0;
	for (size_t i = 0; i < items->n && off < size; i++) {
		const struct jval *o = items->items[i];
		const char *k = jval_str(jval_get(o, "kind")), *n = jval_str(jval_get(jval_get(o, "metadata"), "name"));
		if (is_kind(k, NULL) && n)
			off += (size_t)snprintf(out + off, size - off, "%s%s/%.60s", off ? ", " : "", k, n);
	}
}

const struct jval *inject_find(const struct jval *doc, const char *kind, const char *name, const char *ns,
			       char *err, size_t errlen)
{
	const struct jval *items = doc && doc->type == JV_ARRAY ? doc : jval_get(doc, "items");
	const struct jval *found = NULL;
	char have[256];

	if (doc && doc->type == JV_OBJECT && !items)
		found = find_one(doc, kind, name, ns);
	for (size_t i = 0; items && items->type == JV_ARRAY && i < items->n && !found; i++)
		found = find_one(items->items[i], kind, name, ns);
	if (found)
		return found;
	have[0] = 0;
	if (items && items->type == JV_ARRAY)
		list_workloads(items, have, sizeof(have));
	else if (doc && doc->type == JV_OBJECT && is_kind(jval_str(jval_get(doc, "kind")), NULL))
		snprintf(have, sizeof(have), "%s/%.60s", jval_str(jval_get(doc, "kind")),
			 jval_str(jval_get(jval_get(doc, "metadata"), "name")) ?: "?");
	snprintf(err, errlen, "no %s %.60s%s%.60s in it (it holds %s)", kind ? kind : "Deployment or StatefulSet", name,
		 ns ? " in namespace " : "", ns ? ns : "", have[0] ? have : "no Deployment or StatefulSet");
	return NULL;
}

/* kind, name and namespace of the workload, and its containers. */
static const struct jval *workload_check(const struct jval *w, const char *ns, struct inject_result *res,
					 char *err, size_t errlen)
{
	const struct jval *meta = jval_get(w, "metadata"), *cs = jval_ptr(w, POD_SPEC "/containers");
	const char *kind = jval_str(jval_get(w, "kind")), *name = jval_str(jval_get(meta, "name"));
	const char *ons = jval_str(jval_get(meta, "namespace"));

	if (!is_kind(kind, NULL) || !inject_name_ok(name)) {
		snprintf(err, errlen, "not a Deployment or StatefulSet with a name");
		return NULL;
	}
	if (ns && ons && strcmp(ns, ons)) {
		snprintf(err, errlen, "%s %s is in namespace %.60s, not %.60s", kind, name, ons, ns);
		return NULL;
	}
	snprintf(res->kind, sizeof(res->kind), "%s", kind);
	snprintf(res->name, sizeof(res->name), "%s", name);
	snprintf(res->ns, sizeof(res->ns), "%s", ons ? ons : ns ? ns : "default");
	if (!inject_name_ok(res->ns)) {
		snprintf(err, errlen, "not a namespace: '%.60s'", res->ns);
		return NULL;
	}
	if (!cs || cs->type != JV_ARRAY || cs->n == 0) {
		snprintf(err, errlen, "%s %s has no spec.template.spec.containers", kind, name);
		return NULL;
	}
	for (size_t i = 0; i < cs->n; i++)
		if (!jval_str(jval_get(cs->items[i], "name"))) {
			snprintf(err, errlen, "%s %s: container %zu has no name", kind, name, i);
			return NULL;
		}
	return cs;
}

/* The index of the array's element whose "name" is name, or -1. */
static long by_name(const struct jval *arr, const char *name)
{
	for (size_t i = 0; arr && arr->type == JV_ARRAY && i < arr->n; i++) {
		const char *n = jval_str(jval_get(arr->items[i], "name"));
		if (n && !strcmp(n, name))
			return (long)i;
	}
	return -1;
}

static const struct jval *app_container(const struct jval *cs, const char *want, struct inject_result *res,
					char *err, size_t errlen)
{
	char names[256] = "";
	size_t off = 0;

	for (size_t i = 0; i < cs->n; i++) {
		const char *n = jval_str(jval_get(cs->items[i], "name"));
		if (want ? !strcmp(n, want) : strcmp(n, INJECT_AGENT) != 0) {
			snprintf(res->container, sizeof(res->container), "%s", n);
			return cs->items[i];
		}
		if (off < sizeof(names))
			off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%.60s", off ? ", " : "", n);
	}
	if (want)
		snprintf(err, errlen, "%s %s has no container %.60s (it has %s)", res->kind, res->name, want, names);
	else
		snprintf(err, errlen, "%s %s has no container but the agent", res->kind, res->name);
	return NULL;
}

/* ---- ports ---- */

struct port {
	char name[64];
	unsigned number;
	bool udp;
};

/* "http:80", ":8080/udp" */
static void port_append(char *out, size_t size, const struct port *p)
{
	size_t off = strlen(out);

	snprintf(out + off, size - off, "%s%s:%u%s", off ? "," : "", p->name, p->number, p->udp ? "/udp" : "");
}

/* NUMBER[/udp|/tcp]: 0, or -EINVAL. */
static int port_number(const char *s, unsigned *number, int *udp)
{
	char buf[16];
	const char *slash = strchr(s, '/');
	uint16_t v;

	*udp = -1;
	if (slash) {
		if (!strcmp(slash, "/udp"))
			*udp = 1;
		else if (!strcmp(slash, "/tcp"))
			*udp = 0;
		else
			return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%.*s", (int)(slash ? (size_t)(slash - s) : strlen(s)), s);
	if (port_parse(buf, &v) < 0)
		return -EINVAL;
	*number = v;
	return 0;
}

/* The container's declared TCP and UDP ports. */
static int declared(const struct jval *c, struct port *out, int max, char *err, size_t errlen)
{
	const struct jval *ps = jval_get(c, "ports");
	int n = 0;

	for (size_t i = 0; ps && ps->type == JV_ARRAY && i < ps->n; i++) {
		const struct jval *p = ps->items[i];
		const struct jval *num = jval_get(p, "containerPort");
		const char *proto = jval_str(jval_get(p, "protocol")), *name = jval_str(jval_get(p, "name"));
		uint64_t v;
		if (proto && strcmp(proto, "TCP") && strcmp(proto, "UDP"))
			continue; /* SCTP: not the agent's */
		if (!num || num->type != JV_NUMBER || u64_parse(num->s, 65535, &v) < 0 || v == 0) {
			snprintf(err, errlen, "container %s: ports[%zu].containerPort is not a port",
				 jval_str(jval_get(c, "name")), i);
			return -EINVAL;
		}
		if (n == max) {
			snprintf(err, errlen, "container %s declares more than %d ports: say which with --port",
				 jval_str(jval_get(c, "name")), max);
			return -EINVAL;
		}
		snprintf(out[n].name, sizeof(out[n].name), "%.15s", name ? name : "");
		out[n].number = (unsigned)v;
		out[n].udp = proto && !strcmp(proto, "UDP");
		n++;
	}
	return n;
}

/* One --port against the declared ports. */
static int port_pick(const char *want, const struct port *d, int nd, struct port *out, const char *cname,
		     char *err, size_t errlen)
{
	const char *colon = strchr(want, ':');
	char have[INJECT_PORTS_MAX * 24] = "";
	unsigned number;
	int udp;

	if (colon) { /* NAME:NUMBER[/udp]: as given */
		if ((size_t)(colon - want) > 15 || port_number(colon + 1, &number, &udp) < 0)
			goto bad;
		snprintf(out->name, sizeof(out->name), "%.*s", (int)(colon - want), want);
		out->number = number;
		out->udp = udp == 1;
		return 0;
	}
	if (want[0] >= '0' && want[0] <= '9') { /* a number: names have a letter */
		if (port_number(want, &number, &udp) < 0)
			goto bad;
		for (int i = 0; i < nd; i++)
			if (d[i].number == number && (udp < 0 || d[i].udp == (udp == 1))) {
				*out = d[i];
				return 0;
			}
		snprintf(out->name, sizeof(out->name), "%s", ""); /* a port it does not declare */
		out->number = number;
		out->udp = udp == 1;
		return 0;
	}
	for (int i = 0; i < nd; i++)
		if (d[i].name[0] && !strcmp(d[i].name, want)) {
			*out = d[i];
			return 0;
		}
	for (int i = 0; i < nd; i++)
		port_append(have, sizeof(have), &d[i]);
	snprintf(err, errlen, "--port %.40s: container %s has no port of that name (its ports: %s)", want, cname,
		 have[0] ? have : "none declared");
	return -EINVAL;
bad:
	snprintf(err, errlen, "--port %.40s: not a port name, NUMBER[/udp] or NAME:NUMBER[/udp]", want);
	return -EINVAL;
}

static int ports_text(const struct jval *c, const struct inject_opts *o, struct inject_result *res, char *err,
		      size_t errlen)
{
	struct port d[INJECT_PORTS_MAX], pick[INJECT_PORTS_MAX];
	int nd = declared(c, d, INJECT_PORTS_MAX, err, errlen), n = 0;

	if (nd < 0)
		return nd;
	if (o->nports > INJECT_PORTS_MAX) {
		snprintf(err, errlen, "more than %d --port", INJECT_PORTS_MAX);
		return -EINVAL;
	}
	for (int i = 0; i < o->nports; i++) {
		bool dup = false;
		if (port_pick(o->ports[i], d, nd, &pick[n], res->container, err, errlen) < 0)
			return -EINVAL;
		for (int k = 0; k < n; k++)
			dup |= pick[k].number == pick[n].number && pick[k].udp == pick[n].udp;
		n += !dup;
	}
	if (o->nports == 0) {
		memcpy(pick, d, sizeof(d[0]) * (size_t)nd);
		n = nd;
	}
	if (n == 0) {
		snprintf(err, errlen, "container %s declares no TCP or UDP port: say which with --port NUMBER",
			 res->container);
		return -EINVAL;
	}
	res->ports[0] = 0;
	for (int i = 0; i < n; i++)
		port_append(res->ports, sizeof(res->ports), &pick[i]);
	return 0;
}

/* ---- the agent container ---- */

static struct jval *str_list(const char *const *s)
{
	struct jval *a = jval_new(JV_ARRAY);

	for (; a && *s; s++)
		if (jval_push(a, jval_new_str(*s)) < 0) {
			jval_free(a);
			return NULL;
		}
	return a;
}

/* {name, value} or {name, valueFrom: {fieldRef: {fieldPath}}} */
static struct jval *env_var(const char *name, const char *value, const char *field)
{
	struct jval *e = jval_new(JV_OBJECT), *from = NULL, *ref = NULL;
	int r = jval_set(e, "name", jval_new_str(name));

	if (value)
		return r == 0 && jval_set(e, "value", jval_new_str(value)) == 0 ? e : (jval_free(e), NULL);
	from = jval_new(JV_OBJECT);
	ref = jval_new(JV_OBJECT);
	if (r == 0)
		r = jval_set(ref, "fieldPath", jval_new_str(field));
	if (r == 0)
		r = jval_set(from, "fieldRef", ref), ref = NULL;
	if (r == 0)
		r = jval_set(e, "valueFrom", from), from = NULL;
	jval_free(ref);
	jval_free(from);
	if (r < 0) {
		jval_free(e);
		return NULL;
	}
	return e;
}

/* The app's env, copied; a resourceFieldRef without containerName would
 * name the agent's own resources in the agent: it gets the app's name. */
static int copy_env(struct jval *env, const struct jval *app, const char *cname)
{
	const struct jval *from = jval_get(app, "env");
	int r = 0;

	if (from && from->type != JV_ARRAY)
		return -EINVAL;
	for (size_t i = 0; from && i < from->n && r == 0; i++) {
		struct jval *e = jval_dup(from->items[i]);
		struct jval *rf = jval_ptr(e, "/valueFrom/resourceFieldRef");
		if (rf && rf->type == JV_OBJECT && !jval_get(rf, "containerName"))
			r = jval_set(rf, "containerName", jval_new_str(cname));
		if (r == 0)
			r = jval_push(env, e);
		else
			jval_free(e);
	}
	return r;
}

static struct jval *agent_env(const struct jval *app, const struct inject_opts *o, const struct inject_result *res)
{
	struct jval *env = jval_new(JV_ARRAY);
	int r = env ? copy_env(env, app, res->container) : -ENOMEM;

	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_MANAGER", o->manager, NULL));
	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_WORKLOAD", res->name, NULL));
	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_PORTS", res->ports, NULL));
	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_AGENT_DIR", INJECT_AGENT_DIR, NULL));
	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_POD_NAME", NULL, "metadata.name"));
	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_POD_NAMESPACE", NULL, "metadata.namespace"));
	if (r == 0)
		r = jval_push(env, env_var("SUBWAY_POD_IP", NULL, "status.podIP"));
	if (r < 0) {
		jval_free(env);
		return NULL;
	}
	return env;
}

/* The text of a JSON object, for the fixed parts. */
static struct jval *fixed(const char *json)
{
	return jval_parse(json, strlen(json), NULL, 0);
}

static struct jval *agent_container(const struct jval *app, const struct inject_opts *o,
				    const struct inject_result *res)
{
	static const char *const args[] = { "agent", NULL };
	struct jval *c = jval_new(JV_OBJECT);
	const struct jval *env_from = jval_get(app, "envFrom");
	int r = jval_set(c, "name", jval_new_str(INJECT_AGENT));

	if (r == 0)
		r = jval_set(c, "image", jval_new_str(o->image));
	if (r == 0)
		r = jval_set(c, "imagePullPolicy", jval_new_str("IfNotPresent"));
	if (r == 0)
		r = jval_set(c, "args", str_list(args));
	if (r == 0)
		r = jval_set(c, "env", agent_env(app, o, res));
	if (r == 0 && env_from)
		r = jval_set(c, "envFrom", jval_dup(env_from));
	if (r == 0)
		r = jval_set(c, "resources", fixed("{\"requests\":{\"cpu\":\"10m\",\"memory\":\"16Mi\"},"
						   "\"limits\":{\"cpu\":\"1\",\"memory\":\"64Mi\"}}"));
	/* uid 0 with NET_ADMIN alone: a container gets an added capability
	 * only as uid 0 (a non-root one loses it at its execve, and
	 * allowPrivilegeEscalation: false ignores file capabilities). */
	if (r == 0)
		r = jval_set(c, "securityContext",
			     fixed("{\"runAsUser\":0,\"runAsGroup\":0,\"runAsNonRoot\":false,"
				   "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,"
				   "\"capabilities\":{\"drop\":[\"ALL\"],\"add\":[\"NET_ADMIN\"]},"
				   "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}"));
	if (r == 0)
		r = jval_set(c, "volumeMounts", fixed("[{\"name\":\"" INJECT_AGENT "\",\"mountPath\":\"" INJECT_AGENT_DIR
						      "\",\"readOnly\":true}]"));
	if (r < 0) {
		jval_free(c);
		return NULL;
	}
	return c;
}

/* The Secret's token and certificate, readable by the agent's uid (the
 * pod may have no fsGroup: 0444; only the agent's container mounts it). */
static struct jval *agent_volume(void)
{
	return fixed("{\"name\":\"" INJECT_AGENT "\",\"secret\":{\"secretName\":\"" INJECT_AGENT "\","
		     "\"defaultMode\":292,\"items\":[{\"key\":\"agent-token\",\"path\":\"agent-token\"},"
		     "{\"key\":\"cert.pem\",\"path\":\"cert.pem\"}]}}");
}

/* ---- patches ---- */

/* {"op": op, "path": path[, "value": v]}; takes v. */
static int op_push(struct jval *patch, const char *op, const char *path, struct jval *v, bool has_value)
{
	struct jval *o = jval_new(JV_OBJECT);
	int r = jval_set(o, "op", jval_new_str(op));

	if (r == 0)
		r = jval_set(o, "path", jval_new_str(path));
	if (r == 0 && has_value)
		r = jval_set(o, "value", v), v = NULL;
	jval_free(v);
	if (r < 0) {
		jval_free(o);
		return r;
	}
	return jval_push(patch, o);
}

/* test that path/<i>/name is INJECT_AGENT, then op (replace or remove) at path/<i>. */
static int op_guarded(struct jval *patch, const char *op, const char *array, long i, struct jval *v)
{
	char path[96];
	int r;

	snprintf(path, sizeof(path), "%s/%ld/name", array, i);
	r = op_push(patch, "test", path, jval_new_str(INJECT_AGENT), true);
	snprintf(path, sizeof(path), "%s/%ld", array, i);
	if (r == 0)
		return op_push(patch, op, path, v, v != NULL);
	jval_free(v);
	return r;
}

static int add_ops(struct jval *patch, const struct jval *w, struct jval *container, struct jval *volume,
		   struct inject_result *res)
{
	const struct jval *cs = jval_ptr(w, POD_SPEC "/containers"), *vols = jval_ptr(w, POD_SPEC "/volumes");
	long ci = by_name(cs, INJECT_AGENT), vi = by_name(vols, INJECT_AGENT);
	struct jval *one;
	int r;

	res->had_agent = ci >= 0;
	if (ci >= 0)
		r = op_guarded(patch, "replace", POD_SPEC "/containers", ci, container);
	else
		r = op_push(patch, "add", POD_SPEC "/containers/-", container, true);
	if (r < 0) {
		jval_free(volume);
		return r;
	}
	if (vi >= 0)
		return op_guarded(patch, "replace", POD_SPEC "/volumes", vi, volume);
	if (vols && vols->type == JV_ARRAY)
		return op_push(patch, "add", POD_SPEC "/volumes/-", volume, true);
	one = jval_new(JV_ARRAY);
	r = jval_push(one, volume);
	return r < 0 ? (jval_free(one), r) : op_push(patch, "add", POD_SPEC "/volumes", one, true);
}

static int no_memory(char *err, size_t errlen)
{
	snprintf(err, errlen, "no memory");
	return -ENOMEM;
}

int inject_patch(const struct jval *w, const char *ns, const struct inject_opts *o, struct inject_result *res,
		 char *err, size_t errlen)
{
	const struct jval *cs, *app, *vols;
	struct jval *container;

	memset(res, 0, sizeof(*res));
	if (!(cs = workload_check(w, ns, res, err, errlen)) || !(app = app_container(cs, o->container, res, err, errlen)))
		return -EINVAL;
	if (!strcmp(res->container, INJECT_AGENT)) {
		snprintf(err, errlen, "--container %s is the agent itself", INJECT_AGENT);
		return -EINVAL;
	}
	if (jval_get(app, "env") && jval_get(app, "env")->type != JV_ARRAY) {
		snprintf(err, errlen, "container %s: env is not a list", res->container);
		return -EINVAL;
	}
	vols = jval_ptr(w, POD_SPEC "/volumes");
	if (vols && vols->type != JV_ARRAY) {
		snprintf(err, errlen, "%s %s: spec.template.spec.volumes is not a list", res->kind, res->name);
		return -EINVAL;
	}
	if (ports_text(app, o, res, err, errlen) < 0)
		return -EINVAL;
	container = agent_container(app, o, res);
	res->patch = jval_new(JV_ARRAY);
	if (!container || !res->patch || add_ops(res->patch, w, container, agent_volume(), res) < 0) {
		if (!res->patch || !container)
			jval_free(container);
		jval_free(res->patch);
		res->patch = NULL;
		return no_memory(err, errlen);
	}
	return 0;
}

int uninject_patch(const struct jval *w, const char *ns, struct inject_result *res, char *err, size_t errlen)
{
	const struct jval *cs, *vols;
	long ci, vi;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (!(cs = workload_check(w, ns, res, err, errlen)))
		return -EINVAL;
	vols = jval_ptr(w, POD_SPEC "/volumes");
	ci = by_name(cs, INJECT_AGENT);
	vi = by_name(vols, INJECT_AGENT);
	res->had_agent = ci >= 0;
	if (!(res->patch = jval_new(JV_ARRAY)))
		return no_memory(err, errlen);
	if (ci >= 0)
		r = op_guarded(res->patch, "remove", POD_SPEC "/containers", ci, NULL);
	/* the only volume: the list goes too, as it was before inject */
	if (r == 0 && vi >= 0 && vols->n == 1) {
		r = op_push(res->patch, "test", POD_SPEC "/volumes/0/name", jval_new_str(INJECT_AGENT), true);
		if (r == 0)
			r = op_push(res->patch, "remove", POD_SPEC "/volumes", NULL, false);
	} else if (r == 0 && vi >= 0) {
		r = op_guarded(res->patch, "remove", POD_SPEC "/volumes", vi, NULL);
	}
	if (r < 0) {
		jval_free(res->patch);
		res->patch = NULL;
		return no_memory(err, errlen);
	}
	return 0;
}

/* ---- kubectl ---- */

static const char *kube_resource(const char *kind)
{
	return !strcmp(kind, "StatefulSet") ? "statefulset" : "deployment";
}

void inject_kubectl_argv(const struct inject_result *res, const char *context, const char *kubeconfig,
			 const char *patch_text, char *argv[INJECT_ARGV])
{
	int n = 0;

	argv[n++] = "kubectl";
	if (context) {
		argv[n++] = "--context";
		argv[n++] = (char *)context;
	}
	if (kubeconfig) {
		argv[n++] = "--kubeconfig";
		argv[n++] = (char *)kubeconfig;
	}
	argv[n++] = "patch";
	argv[n++] = (char *)kube_resource(res->kind);
	argv[n++] = (char *)res->name;
	argv[n++] = "-n";
	argv[n++] = (char *)res->ns;
	argv[n++] = "--type";
	argv[n++] = "json";
	argv[n++] = "-p";
	argv[n++] = (char *)patch_text;
	argv[n] = NULL;
}

/* s for a POSIX shell: as it is when every byte is plain, else in single
 * quotes (a quote inside as '\''). */
static void shell_word(const char *s, char *out, size_t *off)
{
	bool plain = *s != 0;

	for (const char *p = s; *p; p++)
		plain &= (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			 strchr("-_./:=@%+,", *p);
	if (plain) {
		*off += (size_t)sprintf(out + *off, "%s", s);
		return;
	}
	out[(*off)++] = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(out + *off, "'\\''", 4);
			*off += 4;
		} else {
			out[(*off)++] = *s;
		}
	}
	out[(*off)++] = '\'';
	out[*off] = 0;
}

char *inject_shell_line(const struct inject_result *res, const char *context, const char *kubeconfig)
{
	char *argv[INJECT_ARGV], *patch = jval_encode(res->patch, 0, NULL), *out;
	size_t need = 1, off = 0;

	if (!patch)
		return NULL;
	inject_kubectl_argv(res, context, kubeconfig, patch, argv);
	for (int i = 0; argv[i]; i++)
		need += strlen(argv[i]) * 4 + 3;
	out = malloc(need);
	for (int i = 0; out && argv[i]; i++) {
		if (i)
			out[off++] = ' ';
		shell_word(argv[i], out, &off);
	}
	free(patch);
	return out;
}
