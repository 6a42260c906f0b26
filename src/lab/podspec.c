/* The manager's pod spec from the manifests (podspec.h). */
#include "lab/podspec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonget.h"
#include "common/run.h"
#include "common/util.h"

#define DOCS_MAX 32
#define PATH_LEN 256
#define JSON_MAX (256 * 1024)

/* python3-yaml: every document, each Secret's entries made plain. */
static const char yaml_to_json[] =
	"import base64, json, sys, yaml\n"
	"docs = [d for d in yaml.safe_load_all(sys.stdin) if d]\n"
	"for d in docs:\n"
	"    if d.get('kind') == 'Secret':\n"
	"        e = {k: base64.b64decode(v).decode() for k, v in (d.get('data') or {}).items()}\n"
	"        e.update(d.get('stringData') or {})\n"
	"        d['entries'] = [{'key': k, 'value': v} for k, v in e.items()]\n"
	"json.dump(docs, sys.stdout)\n";

struct pj {
	const char *doc;
	size_t len;
	char *err;
	size_t errlen;
	int r; /* sticky: the first error */
};

/* Paths are cut at PATH_LEN (then they name nothing). */
static void pathf(char buf[PATH_LEN], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char buf[PATH_LEN], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_LEN, fmt, ap);
	va_end(ap);
}

static const char *path_of(char buf[PATH_LEN], const char *base, const char *rel)
{
	pathf(buf, "%s%s%s", base, *rel ? "." : "", rel);
	return buf;
}

/* A string at base.rel into out; required ones fail the parse when absent. */
static bool pj_str(struct pj *p, const char *base, const char *rel, char *out, size_t size, bool required)
{
	char path[PATH_LEN];
	int r = jsonget_str(p->doc, p->len, path_of(path, base, rel), out, size);

	if (r == 0)
		return true;
	out[0] = 0;
	if ((r == -ENOENT && !required) || p->r)
		return false;
	snprintf(p->err, p->errlen, "%s: %s", path, r == -ENOSPC ? "too long" : "missing (or not a string)");
	p->r = -EINVAL;
	return false;
}

static unsigned pj_uint(struct pj *p, const char *base, const char *rel, unsigned def)
{
	char path[PATH_LEN];
	uint64_t v;

	if (jsonget_u64(p->doc, p->len, path_of(path, base, rel), &v) < 0)
		return def;
	return v > 0x7fffffff ? def : (unsigned)v;
}

static bool pj_bool(struct pj *p, const char *base, const char *rel)
{
	char path[PATH_LEN];
	bool b = false;

	jsonget_bool(p->doc, p->len, path_of(path, base, rel), &b);
	return b;
}

static bool pj_has(struct pj *p, const char *base, const char *rel)
{
	char path[PATH_LEN];
	return jsonget_type(p->doc, p->len, path_of(path, base, rel)) != 0;
}

/* The index of the first document of kind (and name, if given), or -1. */
static int find_doc(struct pj *p, const char *kind, const char *name)
{
	char k[64], n[64], path[PATH_LEN];

	for (int i = 0; i < DOCS_MAX; i++) {
		pathf(path, "%d", i);
		if (!jsonget_type(p->doc, p->len, path))
			break;
		if (pj_str(p, path, "kind", k, sizeof(k), false) && !strcmp(k, kind) &&
		    (!name || (pj_str(p, path, "metadata.name", n, sizeof(n), false) && !strcmp(n, name))))
			return i;
	}
	return -1;
}

/* A list of strings at base.rel (at most max, each < POD_STR). */
static int pj_strs(struct pj *p, const char *base, const char *rel, char (*out)[POD_STR], int max)
{
	char path[PATH_LEN], item[PATH_LEN];
	int n = 0;

	for (; n < max; n++) {
		snprintf(item, sizeof(item), "%d", n);
		pathf(path, "%s.%s", rel, item);
		if (!pj_has(p, base, path))
			break;
		pj_str(p, base, path, out[n], POD_STR, true);
	}
	return n;
}

static void parse_env(struct pj *p, const char *c, struct lab_podspec *s)
{
	char base[PATH_LEN];

	for (s->nenv = 0; s->nenv < POD_ENV; s->nenv++) {
		struct pod_env *e = &s->env[s->nenv];
		pathf(base, "%s.env.%d", c, s->nenv);
		if (!pj_has(p, base, ""))
			break;
		pj_str(p, base, "name", e->name, sizeof(e->name), true);
		if (!pj_str(p, base, "value", e->value, sizeof(e->value), false))
			pj_str(p, base, "valueFrom.fieldRef.fieldPath", e->field, sizeof(e->field), true);
	}
}

/* tcpSocket.port: a number, or the name of the container's port. */
static void parse_probe(struct pj *p, const char *c, const char *which, const struct lab_podspec *s,
			struct pod_probe *pr)
{
	char base[PATH_LEN], name[32];

	pathf(base, "%s.%s", c, which);
	if (!pj_has(p, base, ""))
		return;
	pr->set = true;
	pr->port = (uint16_t)pj_uint(p, base, "tcpSocket.port", 0);
	if (!pr->port && pj_str(p, base, "tcpSocket.port", name, sizeof(name), true) && !strcmp(name, s->port_name))
		pr->port = s->port;
	if (!pr->port && !p->r) {
		snprintf(p->err, p->errlen, "%s: only tcpSocket probes on a known port are run here", base);
		p->r = -EINVAL;
	}
	pr->initial_delay_s = pj_uint(p, base, "initialDelaySeconds", 0);
	pr->period_s = pj_uint(p, base, "periodSeconds", 10);
	pr->timeout_s = pj_uint(p, base, "timeoutSeconds", 1);
	pr->failure_threshold = pj_uint(p, base, "failureThreshold", 3);
}

static void parse_security(struct pj *p, const char *pod, const char *c, struct lab_podspec *s)
{
	char base[PATH_LEN], drop[2][POD_STR];

	pathf(base, "%s.securityContext", pod);
	s->has_user = pj_has(p, base, "runAsUser");
	s->user = pj_uint(p, base, "runAsUser", 0);
	s->has_group = pj_has(p, base, "runAsGroup");
	s->group = pj_uint(p, base, "runAsGroup", 0);
	s->has_fs_group = pj_has(p, base, "fsGroup");
	s->fs_group = pj_uint(p, base, "fsGroup", 0);
	s->non_root = pj_bool(p, base, "runAsNonRoot");
	pj_str(p, base, "seccompProfile.type", drop[0], POD_STR, false);
	s->seccomp_default = !strcmp(drop[0], "RuntimeDefault");
	pathf(base, "%s.securityContext", c);
	s->read_only_root = pj_bool(p, base, "readOnlyRootFilesystem");
	s->no_privilege_escalation = pj_has(p, base, "allowPrivilegeEscalation") &&
				     !pj_bool(p, base, "allowPrivilegeEscalation");
	s->drop_all = pj_strs(p, base, "capabilities.drop", drop, 2) == 1 && !strcmp(drop[0], "ALL");
	/* The container's own user, if it sets one, wins. */
	if (pj_has(p, base, "runAsUser")) {
		s->has_user = true;
		s->user = pj_uint(p, base, "runAsUser", 0);
	}
}

static void parse_volume(struct pj *p, const char *base, struct pod_volume *v)
{
	char ib[PATH_LEN];

	pj_str(p, base, "name", v->name, sizeof(v->name), true);
	pj_str(p, base, "secret.secretName", v->secret, sizeof(v->secret), true);
	v->mode = pj_uint(p, base, "secret.defaultMode", 0644);
	for (v->nitems = 0; v->nitems < POD_ITEMS; v->nitems++) {
		pathf(ib, "%s.secret.items.%d", base, v->nitems);
		if (!pj_has(p, ib, ""))
			break;
		pj_str(p, ib, "key", v->items[v->nitems].key, sizeof(v->items[0].key), true);
		pj_str(p, ib, "path", v->items[v->nitems].path, sizeof(v->items[0].path), true);
	}
}

/* Volumes and where the container mounts them. */
static void parse_volumes(struct pj *p, const char *pod, const char *c, struct lab_podspec *s)
{
	char base[PATH_LEN], name[64];

	for (s->nvolumes = 0; s->nvolumes < POD_VOLUMES; s->nvolumes++) {
		pathf(base, "%s.volumes.%d", pod, s->nvolumes);
		if (!pj_has(p, base, ""))
			break;
		parse_volume(p, base, &s->volumes[s->nvolumes]);
	}
	for (int i = 0; i < POD_VOLUMES; i++) {
		pathf(base, "%s.volumeMounts.%d", c, i);
		if (!pj_has(p, base, ""))
			break;
		pj_str(p, base, "name", name, sizeof(name), true);
		for (int k = 0; k < s->nvolumes; k++) {
			if (strcmp(s->volumes[k].name, name))
				continue;
			pj_str(p, base, "mountPath", s->volumes[k].mount, sizeof(s->volumes[k].mount), true);
			s->volumes[k].read_only = pj_bool(p, base, "readOnly");
		}
	}
}

/* The entries of the Secret the (first) volume names. */
static void parse_secret(struct pj *p, struct lab_podspec *s)
{
	char base[PATH_LEN];
	int d = s->nvolumes ? find_doc(p, "Secret", s->volumes[0].secret) : -1;

	if (d < 0)
		return;
	for (s->nsecrets = 0; s->nsecrets < POD_SECRET_KEYS; s->nsecrets++) {
		struct pod_secret *e = &s->secrets[s->nsecrets];
		pathf(base, "%d.entries.%d", d, s->nsecrets);
		if (!pj_has(p, base, ""))
			break;
		pj_str(p, base, "key", e->key, sizeof(e->key), true);
		pj_str(p, base, "value", e->value, sizeof(e->value), true);
		e->len = strlen(e->value);
	}
}

static void parse_container(struct pj *p, const char *c, struct lab_podspec *s)
{
	pj_str(p, c, "name", s->container, sizeof(s->container), true);
	pj_str(p, c, "image", s->image, sizeof(s->image), true);
	s->ncommand = pj_strs(p, c, "command", s->command, POD_COMMAND);
	s->nargs = pj_strs(p, c, "args", s->args, POD_ARGS);
	parse_env(p, c, s);
	s->port = (uint16_t)pj_uint(p, c, "ports.0.containerPort", 0);
	pj_str(p, c, "ports.0.name", s->port_name, sizeof(s->port_name), false);
	parse_probe(p, c, "livenessProbe", s, &s->liveness);
	parse_probe(p, c, "readinessProbe", s, &s->readiness);
}

int podspec_parse(const char *json, size_t len, struct lab_podspec *out, char *err, size_t errlen)
{
	struct pj p = { json, len, err, errlen, 0 };
	char pod[PATH_LEN], c[PATH_LEN];
	int d;

	memset(out, 0, sizeof(*out));
	if (jsonget_valid(json, len) < 0) {
		snprintf(err, errlen, "the manifests are not valid JSON once converted");
		return -EINVAL;
	}
	d = find_doc(&p, "Deployment", NULL);
	if (d < 0) {
		snprintf(err, errlen, "the manifests have no Deployment");
		return -EINVAL;
	}
	pathf(pod, "%d", d);
	pj_str(&p, pod, "metadata.name", out->deployment, sizeof(out->deployment), true);
	pj_str(&p, pod, "metadata.namespace", out->ns, sizeof(out->ns), true);
	pathf(pod, "%d.spec.template.spec", d);
	pathf(c, "%s.containers.0", pod);
	parse_container(&p, c, out);
	parse_security(&p, pod, c, out);
	parse_volumes(&p, pod, c, out);
	parse_secret(&p, out);
	if (!p.r && !out->port) {
		snprintf(err, errlen, "%s.ports: no containerPort", c);
		p.r = -EINVAL;
	}
	return p.r;
}

const struct pod_secret *podspec_secret(const struct lab_podspec *s, const char *key)
{
	for (int i = 0; i < s->nsecrets; i++)
		if (!strcmp(s->secrets[i].key, key))
			return &s->secrets[i];
	return NULL;
}

int podspec_load(const char *path, struct lab_podspec *out, char *err, size_t errlen)
{
	char *argv[] = { "/usr/bin/python3", "-c", (char *)yaml_to_json, NULL };
	char *yaml = malloc(JSON_MAX), *json = malloc(JSON_MAX);
	struct run_opts o = { .out = json, .out_size = JSON_MAX, .quiet = true, .timeout_ms = 10000 };
	ssize_t n = yaml && json ? file_read_small(path, yaml, JSON_MAX) : -ENOMEM;
	int r = n < 0 ? (int)n : 0;

	if (r < 0)
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
	o.input = yaml;
	if (r == 0 && run_argv(argv, &o) != 0) {
		snprintf(err, errlen, "python3-yaml could not read %s: %.200s", path, json);
		r = -EINVAL;
	}
	if (r == 0)
		r = podspec_parse(json, strlen(json), out, err, errlen);
	if (yaml)
		explicit_bzero(yaml, JSON_MAX);
	if (json)
		explicit_bzero(json, JSON_MAX);
	free(yaml);
	free(json);
	return r;
}
