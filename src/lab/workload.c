/* The workloads the lab holds as manifests (docs/lab.md, "Workloads"),
 * and `lab inject` / `lab uninject`.
 *
 * workloads/<ns>/<name>.json is a Deployment as `kubectl get -o json`
 * gives it (without what the API server adds).  Its pods are the plan's
 * pods of its app (web-0, web-1); each runs the app container with what
 * the spec says (nginx with its env and port: procs.c), and once
 * injected the agent's container, which the lab's kubelet runs from the
 * spec (kubelet.h).  `lab inject` applies the patch `subway inject` makes
 * (cli/inject.h) to the held spec and restarts the pods, one after the
 * other, as a rollout would. */
#include "lab/workload.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/inject.h"
#include "common/jval.h"
#include "common/log.h"
#include "common/util.h"
#include "lab/kubelet.h"

#define WORKLOAD_MAX (256 * 1024)

/* The web Deployment: an app's environment, one value with a quote, an
 * apostrophe, a newline, '=' and '$' (a $(VAR) that names nothing stays
 * as written; SELF_URL's names POD_NAME, defined before it). */
static const char web_json[] =
	"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\","
	" \"metadata\": {\"name\": \"web\", \"namespace\": \"default\", \"labels\": {\"app\": \"web\"}},"
	" \"spec\": {\"replicas\": 2, \"selector\": {\"matchLabels\": {\"app\": \"web\"}},"
	"  \"template\": {\"metadata\": {\"labels\": {\"app\": \"web\"}},"
	"   \"spec\": {\"enableServiceLinks\": false,"
	"    \"containers\": [{\"name\": \"web\", \"image\": \"docker.io/library/nginx:1.22\","
	"     \"ports\": [{\"name\": \"http\", \"containerPort\": 80, \"protocol\": \"TCP\"}],"
	"     \"env\": ["
	"      {\"name\": \"APP_ENV\", \"value\": \"staging\"},"
	"      {\"name\": \"LOG_LEVEL\", \"value\": \"info\"},"
	"      {\"name\": \"DATABASE_URL\", \"value\": \"postgres://web@db.default.svc.cluster.local:5432/shop?sslmode=disable\"},"
	"      {\"name\": \"GREETING\", \"value\": \"it's a \\\"quoted\\\" line\\nand a second one: a=b, costs $5, $(NOT_SET) stays\"},"
	"      {\"name\": \"POD_NAME\", \"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"metadata.name\"}}},"
	"      {\"name\": \"SELF_URL\", \"value\": \"http://$(POD_NAME).web.default:80/\"}"
	"     ]}]}}}}";

static const struct {
	const char *ns, *name, *json;
} held[] = {
	{ "default", "web", web_json },
};

bool workload_held(size_t i, const char **ns, const char **name)
{
	if (i >= ARRAY_SIZE(held))
		return false;
	*ns = held[i].ns;
	*name = held[i].name;
	return true;
}

static void held_path(const struct lab *lab, const char *ns, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/workloads/%s/%s.json", lab->dir, ns, name);
}

int workload_save(const struct lab *lab, const char *ns, const char *name, const struct jval *w)
{
	char path[256], dir[200], tmp[270];
	size_t len;
	char *text = jval_encode(w, 2, &len);
	int r = text ? 0 : -ENOMEM;

	snprintf(dir, sizeof(dir), "%s/workloads/%s", lab->dir, ns);
	held_path(lab, ns, name, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (r == 0)
		r = mkdir_p(dir, 0755);
	if (r == 0 && text)
		text[len++] = '\n'; /* jval_encode left room: its NUL */
	if (r == 0)
		r = file_write(tmp, text, len, 0644);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		log_err("cannot write %s: %s", path, strerror(-r));
	free(text);
	return r;
}

int workload_write_all(const struct lab *lab)
{
	for (size_t i = 0; i < ARRAY_SIZE(held); i++) {
		char err[128];
		struct jval *w = jval_parse(held[i].json, strlen(held[i].json), err, sizeof(err));
		int r = w ? workload_save(lab, held[i].ns, held[i].name, w) : -EINVAL;
		if (!w)
			log_err("the lab's %s workload: %s (a bug)", held[i].name, err);
		jval_free(w);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The text of the held workload, or NULL (err says which exist). */
static char *held_text(const struct lab *lab, const char *ns, const char *name, char *err, size_t errlen)
{
	char path[256], *text = malloc(WORKLOAD_MAX);
	ssize_t n;

	held_path(lab, ns, name, path, sizeof(path));
	n = text ? file_read_small(path, text, WORKLOAD_MAX) : -ENOMEM;
	if (n >= 0)
		return text;
	free(text);
	if (n == -ENOENT) {
		char have[128] = "";
		size_t off = 0;
		for (size_t i = 0; i < ARRAY_SIZE(held); i++)
			off += (size_t)snprintf(have + off, sizeof(have) - off, "%s%s/%s", off ? ", " : "", held[i].ns,
						held[i].name);
		snprintf(err, errlen, "the lab holds no workload %s in namespace %s (it holds %s)", name, ns, have);
	} else {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror((int)-n));
	}
	return NULL;
}

struct jval *workload_load(const struct lab *lab, const char *ns, const char *name, char *err, size_t errlen)
{
	char *text = held_text(lab, ns, name, err, errlen), perr[128];
	struct jval *w = text ? jval_parse(text, strlen(text), perr, sizeof(perr)) : NULL;

	if (text && !w)
		snprintf(err, errlen, "%s/workloads/%s/%s.json: %s", lab->dir, ns, name, perr);
	free(text);
	return w;
}

int workload_pods(const struct jval *w, const struct lab_pod *out[], int max)
{
	const char *ns = jval_str(jval_ptr(w, "/metadata/namespace"));
	const char *app = jval_str(jval_ptr(w, "/spec/selector/matchLabels/app"));
	int n = 0;

	for (size_t i = 0; ns && app && i < lab_npods && n < max; i++)
		if (!strcmp(lab_pods[i].ns, ns) && !strcmp(lab_pods[i].app, app))
			out[n++] = &lab_pods[i];
	return n;
}

/* The held workload of pod's app (NULL: it has none). */
static const char *held_of(const struct lab_pod *pod)
{
	for (size_t i = 0; i < ARRAY_SIZE(held); i++)
		if (!strcmp(held[i].ns, pod->ns) && !strcmp(held[i].name, pod->app))
			return held[i].name;
	return NULL;
}

/* "[<workload>,<more documents>]" for podspec_parse; more is a JSON
 * array's text or NULL. */
static char *docs_text(const char *workload, const char *more)
{
	size_t n = strlen(workload), m = more ? strlen(more) : 0;
	char *t = malloc(n + m + 4);

	if (!t)
		return NULL;
	if (m > 2)
		sprintf(t, "[%s,%s", workload, more + 1);
	else
		sprintf(t, "[%s]", workload);
	return t;
}

/* The spec of one container of pod's workload (NULL: the app's, its
 * first), its Secret volumes' entries from install/subway-agent.yaml. */
static int container_spec(const struct lab *lab, const struct lab_pod *pod, const char *container,
			  struct lab_podspec *out, char *err, size_t errlen)
{
	const char *name = held_of(pod);
	char *text = name ? held_text(lab, pod->ns, name, err, errlen) : NULL, *secrets = NULL, *docs, path[128];
	int r;

	if (!name)
		snprintf(err, errlen, "pod %s belongs to no workload the lab holds", pod->name);
	if (!text)
		return -ENOENT;
	if (container) {
		lab_path(lab, path, sizeof(path), "install/subway-agent.yaml");
		secrets = podspec_yaml_json(path, err, errlen);
		if (!secrets) {
			free(text);
			return -ENOENT;
		}
	}
	docs = docs_text(text, secrets);
	r = docs ? podspec_parse(docs, strlen(docs), container, out, err, errlen) : -ENOMEM;
	if (secrets)
		explicit_bzero(secrets, strlen(secrets));
	if (docs)
		explicit_bzero(docs, strlen(docs));
	free(secrets);
	free(docs);
	free(text);
	return r;
}

int workload_app_spec(const struct lab *lab, const struct lab_pod *pod, struct lab_podspec *out, char *err,
		      size_t errlen)
{
	return container_spec(lab, pod, NULL, out, err, errlen);
}

/* ---- lab inject / uninject ---- */

/* The options `subway inject` would take in this cluster: the manager's
 * image and its service's ClusterIP and port. */
static int lab_inject_opts(const struct lab *lab, struct inject_opts *o, char *image, size_t isize, char *manager,
			   size_t msize)
{
	const struct lab_pod *mp = lab_pod_by_server(LAB_SRV_MANAGER);
	const struct lab_service *svc = lab_service_find(mp->ns, mp->app);
	struct kubelet_state st;
	char a[16];

	if (kubelet_state_read(lab, mp->name, &st) < 0 || !st.image[0]) {
		fprintf(stderr, "subway lab inject: lab %s runs no manager (up --no-manager): agents would have none "
				"to reach\n", lab->name);
		return -ENOENT;
	}
	snprintf(image, isize, "%s", st.image);
	snprintf(manager, msize, "%s:%u", ip4_str(svc->ip, a), svc->ports[0].port);
	memset(o, 0, sizeof(*o));
	o->image = image;
	o->manager = manager;
	return 0;
}

/* Restarts pod as a rollout does: the agent's container removed, the
 * app's server started again from the spec, then, when the spec has it,
 * the agent's container. */
static int restart_pod(struct lab *lab, const struct lab_pod *pod, bool with_agent)
{
	struct lab_proc procs[LAB_PROCS_MAX];
	struct lab_podspec *s = NULL;
	char key[KUBELET_KEY_MAX], names[1][LAB_NS_MAX], path[256], err[512];
	struct kubelet_state st;
	int n = procs_plan(lab, procs, LAB_PROCS_MAX), r = 0;
	pid_t pid = 0;

	kubelet_key(key, sizeof(key), pod, INJECT_AGENT);
	kubelet_remove_container(lab, key);
	snprintf(path, sizeof(path), "%s/volumes/%s/%s", lab->dir, pod->name, INJECT_AGENT);
	rm_rf(path);
	*strrchr(path, '/') = 0;
	rmdir(path); /* when it holds nothing else */
	lab_ns_name(names[0], LAB_NS_MAX, lab->name, pod->name);
	netns_kill_all(names, 1);
	for (int i = 0; i < n && pid == 0; i++)
		if (procs[i].kind == PROC_POD && !strcmp(procs[i].name, pod->name)) {
			pid = proc_start(lab, &procs[i]);
			r = pid > 0 ? procs_wait_ready(lab, &procs[i], pid) : -EIO;
		}
	if (r < 0) {
		fprintf(stderr, "subway lab inject: pod %s: its server did not start again (see %s/logs/%s.log)\n",
			pod->name, lab->dir, pod->name);
		return r;
	}
	if (!with_agent) {
		printf("pod %s restarted without the agent\n", pod->name);
		return 0;
	}
	s = calloc(1, sizeof(*s));
	r = s ? container_spec(lab, pod, INJECT_AGENT, s, err, sizeof(err)) : -ENOMEM;
	if (r < 0)
		fprintf(stderr, "subway lab inject: pod %s: the agent's container: %s\n", pod->name, err);
	if (r == 0 && (r = kubelet_run_container(lab, pod, s)) < 0)
		fprintf(stderr, "subway lab inject: pod %s: the agent's container did not start (see above)\n",
			pod->name);
	if (r == 0 && kubelet_state_read(lab, key, &st) == 0)
		printf("pod %s restarted with container %s (%.12s), %s\n", pod->name, INJECT_AGENT, st.container,
		       st.pid > 0 ? "running" : "exited at once: the lab's kubelet restarts it");
	if (s)
		explicit_bzero(s, sizeof(*s));
	free(s);
	return r;
}

/* The patch's operations, one line each. */
static void print_ops(const struct inject_result *res)
{
	printf("%s/%s in namespace %s:", !strcmp(res->kind, "StatefulSet") ? "statefulset" : "deployment",
	       res->name, res->ns);
	for (size_t i = 0; i < res->patch->n; i++)
		printf("%s %s %s", i ? "," : "", jval_str(jval_get(res->patch->items[i], "op")),
		       jval_str(jval_get(res->patch->items[i], "path")));
	printf("\n");
}

static int inject_locked(struct lab *lab, const char *name, const char *ns, bool inject)
{
	const char *cmd = inject ? "inject" : "uninject";
	char image[POD_STR], manager[32], err[512];
	struct inject_opts o;
	struct inject_result res = { 0 };
	const struct lab_pod *pods[8];
	struct jval *w = workload_load(lab, ns, name, err, sizeof(err));
	int n, r = w ? 0 : -ENOENT;

	if (!w)
		fprintf(stderr, "subway lab %s: %s\n", cmd, err);
	if (r == 0 && inject && (r = lab_inject_opts(lab, &o, image, sizeof(image), manager, sizeof(manager))) < 0)
		goto out;
	if (r == 0 && (inject ? inject_patch(w, ns, &o, &res, err, sizeof(err))
			      : uninject_patch(w, ns, &res, err, sizeof(err))) < 0) {
		fprintf(stderr, "subway lab %s: %s\n", cmd, err);
		r = -EINVAL;
	}
	if (r < 0)
		goto out;
	if (!res.patch->n) {
		printf("%s %s in namespace %s has no agent: nothing to remove\n", res.kind, res.name, res.ns);
		goto out;
	}
	if ((r = jval_patch(&w, res.patch, err, sizeof(err))) < 0) {
		fprintf(stderr, "subway lab %s: the patch does not apply: %s\n", cmd, err);
		goto out;
	}
	if ((r = workload_save(lab, ns, name, w)) < 0)
		goto out;
	print_ops(&res);
	n = workload_pods(w, pods, (int)ARRAY_SIZE(pods));
	for (int i = 0; i < n && r == 0; i++)
		r = restart_pod(lab, pods[i], inject);
	kubelet_rescan(lab);
out:
	jval_free(res.patch);
	jval_free(w);
	return r < 0 ? 1 : 0;
}

int lab_inject(struct lab *lab, const char *name, const char *ns, bool inject)
{
	uint64_t t0 = now_ms();
	int r;

	if (!lab_is_ready(lab)) {
		fprintf(stderr, "subway lab %s: lab %s is not up\n", inject ? "inject" : "uninject", lab->name);
		return 1;
	}
	if (lab_lock(lab, 30000) < 0) {
		fprintf(stderr, "subway lab %s: lab %s is busy (an up or down is running)\n",
			inject ? "inject" : "uninject", lab->name);
		return 1;
	}
	r = inject_locked(lab, name, ns, inject);
	lab_unlock(lab, false);
	if (r == 0)
		printf("%s %s in %.1f s\n", inject ? "injected" : "uninjected", name, (double)(now_ms() - t0) / 1000);
	return r;
}
