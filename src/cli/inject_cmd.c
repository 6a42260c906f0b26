/* The commands `subway inject` and `subway uninject` (docs/install.md):
 * arguments, where the workload comes from (a file or the user's
 * kubectl), the output, and --apply.  The patches are inject.c's.
 * Options are matched exactly; a bad one prints one line and exits 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inject.h"
#include "cli/kube.h"
#include "commands.h"
#include "common/util.h"

#define KUBECTL_JSON_MAX (4 << 20)
#define MANAGER_NS "subway"
#define MANAGER_SERVICE "manager"
#define MANAGER_DEPLOYMENT "subway-manager"

struct inject_args {
	const char *cmd;       /* "inject" or "uninject" */
	const char *workload, *ns, *kind, *from_file;
	struct kube kube;
	bool apply, json, help;
	struct inject_opts o;
};

static void inject_usage(FILE *fp, const char *cmd)
{
	bool in = !strcmp(cmd, "inject");

	fprintf(fp, "usage: subway %s WORKLOAD [-n NAMESPACE] [--kind deployment|statefulset] [--from-file FILE]\n", cmd);
	if (in)
		fprintf(fp, "                     [--port PORT]... [--container NAME] [--image REF] [--manager IP:PORT]\n");
	fprintf(fp, "                     [--apply] [--context NAME] [--kubeconfig FILE] [--json]\n\n");
	if (in)
		fprintf(fp,
			"Prints the JSON patch (RFC 6902) that adds subway's agent container to a Deployment\n"
			"or StatefulSet, so that its traffic can be intercepted, and the 'kubectl patch' command\n"
			"that applies it.  The agent gets the app container's env and envFrom, NET_ADMIN and\n"
			"nothing else, and the Secret subway-agent, which 'subway install' writes to\n"
			"DIR/subway-agent.yaml: apply it once in each namespace you inject into.\n\n");
	else
		fprintf(fp, "Prints the JSON patch (RFC 6902) that removes subway's agent container and its volume\n"
			    "from a Deployment or StatefulSet, and the 'kubectl patch' command that applies it.\n\n");
	fprintf(fp,
		"  -n, --namespace NS   the workload's namespace (default: the file's, else default)\n"
		"  --kind K             deployment (the default with kubectl) or statefulset\n"
		"  --from-file FILE     the workload from a manifest (YAML or JSON: a file of kubectl get -o\n"
		"                       json); without it, from 'kubectl get KIND/WORKLOAD -o json'\n");
	if (in)
		fprintf(fp,
			"  --port PORT          the app container's ports the agent may take: a name, NUMBER[/udp],\n"
			"                       or NAME:NUMBER[/udp] for one it does not declare (repeatable;\n"
			"                       default: every TCP and UDP port it declares)\n"
			"  --container NAME     the app container (default: the first)\n"
			"  --image REF          the agent's image (default: the manager's, from kubectl; else\n"
			"                       subway:%s)\n"
			"  --manager IP:PORT    where agents reach the manager (default: the ClusterIP of service\n"
			"                       manager in namespace subway, from kubectl; needed with --from-file)\n",
			SUBWAY_VERSION);
	fprintf(fp, "  --apply              run the patch with kubectl%s\n"
		    "  --context NAME, --kubeconfig FILE   passed to kubectl\n"
		    "  --json               one JSON object: the workload, the patch and the command\n",
		in ? " (the namespace must have the Secret)" : "");
}

static int arg_bad(const char *cmd, const char *what, const char *val, const char *why)
{
	char cut[STR_CUT_SIZE];

	fprintf(stderr, "subway %s: %s '%s': %s (try 'subway %s --help')\n", cmd, what,
		str_cut(val, strlen(val), cut, sizeof(cut)), why, cmd);
	return 2;
}

static bool is_opt(const char *arg, const char *opt)
{
	size_t n = strlen(opt);
	return !strncmp(arg, opt, n) && (arg[n] == 0 || arg[n] == '=');
}

static int opt_value(const struct inject_args *a, int argc, char **argv, int *i, const char **out)
{
	const char *eq = argv[*i][0] == '-' && argv[*i][1] == '-' ? strchr(argv[*i], '=') : NULL;

	if (eq) {
		*out = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc) {
		fprintf(stderr, "subway %s: option '%s' needs a value\n", a->cmd, argv[*i]);
		return 2;
	}
	*out = argv[++*i];
	return 0;
}

/* Options of inject only. */
static int inject_only(struct inject_args *a, int argc, char **argv, int *i, bool *hit)
{
	const char *arg = argv[*i], *v = NULL;
	int r;

	*hit = true;
	if (is_opt(arg, "--port")) {
		if ((r = opt_value(a, argc, argv, i, &v)) != 0)
			return r;
		if (a->o.nports == INJECT_PORTS_MAX)
			return arg_bad(a->cmd, "--port", v, "more than 16 ports");
		a->o.ports[a->o.nports++] = v;
		return 0;
	}
	if (is_opt(arg, "--container"))
		return opt_value(a, argc, argv, i, &a->o.container);
	if (is_opt(arg, "--image"))
		return opt_value(a, argc, argv, i, &a->o.image);
	if (is_opt(arg, "--manager"))
		return opt_value(a, argc, argv, i, &a->o.manager);
	*hit = false;
	return 0;
}

static int parse_one(struct inject_args *a, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];
	bool hit = false;
	int r = 0;

	if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
		a->help = true;
	else if (!strcmp(arg, "-n") || is_opt(arg, "--namespace"))
		return opt_value(a, argc, argv, i, &a->ns);
	else if (is_opt(arg, "--kind"))
		return opt_value(a, argc, argv, i, &a->kind);
	else if (is_opt(arg, "--from-file"))
		return opt_value(a, argc, argv, i, &a->from_file);
	else if (is_opt(arg, "--context"))
		return opt_value(a, argc, argv, i, &a->kube.context);
	else if (is_opt(arg, "--kubeconfig"))
		return opt_value(a, argc, argv, i, &a->kube.kubeconfig);
	else if (!strcmp(arg, "--apply"))
		a->apply = true;
	else if (!strcmp(arg, "--json"))
		a->json = true;
	else if (!strcmp(a->cmd, "inject") && ((r = inject_only(a, argc, argv, i, &hit)) != 0 || hit))
		return r;
	else if (arg[0] == '-' && arg[1])
		return arg_bad(a->cmd, "unknown option", arg, "not an option of this command");
	else if (!a->workload)
		a->workload = arg;
	else
		return arg_bad(a->cmd, "unexpected argument", arg, "one workload at a time");
	return 0;
}

/* "Deployment" / "StatefulSet" from --kind. */
static int args_check(struct inject_args *a)
{
	uint32_t ip;
	uint16_t port;

	if (!a->workload) {
		fprintf(stderr, "subway %s: which workload? (subway %s WORKLOAD [-n NAMESPACE] ...)\n", a->cmd, a->cmd);
		return 2;
	}
	if (!inject_name_ok(a->workload))
		return arg_bad(a->cmd, "workload", a->workload, "not a Kubernetes name (a-z, 0-9, '-', '.')");
	if (a->ns && !inject_name_ok(a->ns))
		return arg_bad(a->cmd, "--namespace", a->ns, "not a Kubernetes name (a-z, 0-9, '-', '.')");
	if (a->kind && !strcmp(a->kind, "deployment"))
		a->kind = "Deployment";
	else if (a->kind && !strcmp(a->kind, "statefulset"))
		a->kind = "StatefulSet";
	else if (a->kind)
		return arg_bad(a->cmd, "--kind", a->kind, "deployment or statefulset");
	if (a->o.manager && endpoint_parse(a->o.manager, &ip, &port) < 0)
		return arg_bad(a->cmd, "--manager", a->o.manager, "not IP:PORT");
	if (a->o.image && (!*a->o.image || strpbrk(a->o.image, " \t\n\"'")))
		return arg_bad(a->cmd, "--image", a->o.image, "not an image reference");
	if (a->from_file && !*a->from_file)
		return arg_bad(a->cmd, "--from-file", a->from_file, "an empty path");
	return 0;
}

/* ---- the workload ---- */

static struct jval *parse_text(const struct inject_args *a, const char *text, const char *from)
{
	char err[256];
	struct jval *v = jval_parse(text, strlen(text), err, sizeof(err));

	if (!v)
		fprintf(stderr, "subway %s: %s is not JSON: %s\n", a->cmd, from, err);
	return v;
}

/* kubectl get KIND/NAME -n NS -o json. */
static struct jval *from_kubectl(const struct inject_args *a)
{
	const char *kind = a->kind && !strcmp(a->kind, "StatefulSet") ? "statefulset" : "deployment";
	char what[300], *out = malloc(KUBECTL_JSON_MAX);
	const char *args[] = { "get", what, "-n", a->ns ? a->ns : "default", "-o", "json", NULL };
	struct jval *v = NULL;
	int r;

	snprintf(what, sizeof(what), "%s/%s", kind, a->workload);
	if (!out)
		return NULL;
	r = kube_run(&a->kube, args, NULL, out, KUBECTL_JSON_MAX);
	if (r == KUBE_MISSING)
		fprintf(stderr, "subway %s: cannot read %s: kubectl is not installed (or not on PATH); give the "
				"workload's manifest with --from-file FILE\n", a->cmd, what);
	else if (r != 0)
		fprintf(stderr, "subway %s: 'kubectl get %s -n %s' failed (exit %d); give the workload's manifest "
				"with --from-file FILE\n", a->cmd, what, args[3], r);
	else
		v = parse_text(a, out, "kubectl's answer");
	free(out);
	return v;
}

/* The workload object: *doc is what to free. */
static const struct jval *workload(const struct inject_args *a, struct jval **doc)
{
	char err[400];
	const struct jval *w;
	char *text;

	*doc = NULL;
	if (!a->from_file) {
		*doc = from_kubectl(a);
		w = *doc ? inject_find(*doc, a->kind ? a->kind : "Deployment", a->workload, a->ns, err, sizeof(err)) : NULL;
	} else {
		if (!(text = kube_manifest_json(a->from_file, err, sizeof(err)))) {
			fprintf(stderr, "subway %s: %s\n", a->cmd, err);
			return NULL;
		}
		*doc = parse_text(a, text, a->from_file);
		free(text);
		w = *doc ? inject_find(*doc, a->kind, a->workload, a->ns, err, sizeof(err)) : NULL;
	}
	if (*doc && !w)
		fprintf(stderr, "subway %s: %s: %s\n", a->cmd, a->from_file ? a->from_file : "kubectl", err);
	return w;
}

/* ---- the manager: where agents reach it, its image ---- */

/* The ClusterIP and port of service manager, and the manager's image,
 * from `kubectl get -n subway service/manager deployment/subway-manager`. */
static int manager_from_kubectl(const struct inject_args *a, char *manager, size_t msize, char *image,
				size_t isize)
{
	static const char *const args[] = { "get", "-n", MANAGER_NS, "service/" MANAGER_SERVICE,
					    "deployment/" MANAGER_DEPLOYMENT, "-o", "json", NULL };
	char *out = malloc(KUBECTL_JSON_MAX);
	struct jval *list = NULL;
	const struct jval *svc, *dep, *port;
	const char *ip, *img;
	int r = out ? kube_run(&a->kube, args, NULL, out, KUBECTL_JSON_MAX) : -ENOMEM;

	if (r == 0)
		list = parse_text(a, out, "kubectl's answer");
	free(out);
	svc = jval_at(jval_get(list, "items"), 0);
	dep = jval_at(jval_get(list, "items"), 1);
	ip = jval_str(jval_ptr(svc, "/spec/clusterIP"));
	port = jval_ptr(svc, "/spec/ports/0/port");
	img = jval_str(jval_ptr(dep, "/spec/template/spec/containers/0/image"));
	if (ip && port && port->type == JV_NUMBER && img) {
		snprintf(manager, msize, "%s:%s", ip, port->s);
		snprintf(image, isize, "%s", img);
	} else {
		fprintf(stderr, "subway %s: cannot find subway's manager with kubectl (service %s and deployment %s "
				"in namespace %s): install it first (subway install), or give --manager IP:PORT and "
				"--image REF\n", a->cmd, MANAGER_SERVICE, MANAGER_DEPLOYMENT, MANAGER_NS);
		r = -ENOENT;
	}
	jval_free(list);
	return r < 0 ? r : 0;
}

static int manager_values(struct inject_args *a, char *manager, size_t msize, char *image, size_t isize)
{
	if (a->o.manager && a->o.image)
		return 0;
	if (a->from_file && !a->o.manager) {
		fprintf(stderr, "subway inject: --manager IP:PORT is needed with --from-file: where agents reach the "
				"manager, the ClusterIP and port of service %s in namespace %s (kubectl get service "
				"%s -n %s)\n", MANAGER_SERVICE, MANAGER_NS, MANAGER_SERVICE, MANAGER_NS);
		return -EINVAL;
	}
	if (a->from_file) {
		snprintf(image, isize, "subway:%s", SUBWAY_VERSION);
	} else {
		if (manager_from_kubectl(a, manager, msize, image, isize) < 0)
			return -ENOENT;
		if (!a->o.manager)
			a->o.manager = manager;
	}
	if (!a->o.image)
		a->o.image = image;
	return 0;
}

/* ---- output and --apply ---- */

static int print_json(const struct inject_args *a, const struct inject_result *res, const char *line)
{
	struct jval *o = jval_new(JV_OBJECT);
	bool in = !strcmp(a->cmd, "inject");
	int r = jval_set(o, "kind", jval_new_str(res->kind));
	char *text;

	if (r == 0)
		r = jval_set(o, "name", jval_new_str(res->name));
	if (r == 0)
		r = jval_set(o, "namespace", jval_new_str(res->ns));
	if (r == 0 && in)
		r = jval_set(o, "container", jval_new_str(res->container));
	if (r == 0 && in)
		r = jval_set(o, "ports", jval_new_str(res->ports));
	if (r == 0 && in)
		r = jval_set(o, "image", jval_new_str(a->o.image));
	if (r == 0 && in)
		r = jval_set(o, "manager", jval_new_str(a->o.manager));
	if (r == 0)
		r = jval_set(o, "had_agent", jval_new_bool(res->had_agent));
	if (r == 0)
		r = jval_set(o, "secret", in ? jval_new_str(INJECT_AGENT) : jval_new(JV_NULL));
	if (r == 0)
		r = jval_set(o, "patch", jval_dup(res->patch));
	if (r == 0)
		r = jval_set(o, "command", res->patch->n ? jval_new_str(line) : jval_new(JV_NULL));
	text = r == 0 ? jval_encode(o, 2, NULL) : NULL;
	jval_free(o);
	if (!text)
		return -ENOMEM;
	printf("%s\n", text);
	free(text);
	return 0;
}

static int print_human(const struct inject_args *a, const struct inject_result *res, const char *line)
{
	char *text = jval_encode(res->patch, 2, NULL);
	const char *res_kind = !strcmp(res->kind, "StatefulSet") ? "statefulset" : "deployment";

	if (!text)
		return -ENOMEM;
	if (!strcmp(a->cmd, "inject")) {
		printf("%s/%s in namespace %s: %s the agent container %s beside container %s (ports %s)\n", res_kind,
		       res->name, res->ns, res->had_agent ? "replace" : "add", INJECT_AGENT, res->container,
		       res->ports);
		printf("its pods need the Secret %s in namespace %s: kubectl apply -n %s -f DIR/subway-agent.yaml "
		       "(DIR: where 'subway install --out DIR' wrote)\n", INJECT_AGENT, res->ns, res->ns);
	} else if (!res->patch->n) {
		printf("%s/%s in namespace %s has no agent: nothing to remove\n", res_kind, res->name, res->ns);
		free(text);
		return 0;
	} else {
		printf("%s/%s in namespace %s: remove the agent container %s and its volume\n", res_kind, res->name,
		       res->ns, INJECT_AGENT);
	}
	printf("\nJSON patch (RFC 6902):\n%s\n\n%s\n", text, line);
	free(text);
	return 0;
}

/* The namespace has the agent's Secret (inject --apply). */
static int secret_present(const struct inject_args *a, const struct inject_result *res)
{
	char out[512];
	const char *args[] = { "get", "secret/" INJECT_AGENT, "-n", res->ns, "-o", "name", NULL };
	int r = kube_run(&a->kube, args, NULL, out, sizeof(out));

	if (r == 0)
		return 0;
	fprintf(stderr, "subway inject: namespace %s has no Secret %s (or kubectl cannot read it): its pods would "
			"not start; apply it first: kubectl apply -n %s -f DIR/subway-agent.yaml (DIR: where 'subway "
			"install --out DIR' wrote)\n", res->ns, INJECT_AGENT, res->ns);
	return -ENOENT;
}

static int apply(const struct inject_args *a, const struct inject_result *res)
{
	char *argv[INJECT_ARGV], out[4096], *patch;
	int r;

	if (!res->patch->n)
		return 0;
	if (!strcmp(a->cmd, "inject") && secret_present(a, res) < 0)
		return 1;
	patch = jval_encode(res->patch, 0, NULL);
	if (!patch)
		return 1;
	inject_kubectl_argv(res, NULL, NULL, patch, argv); /* kube_run adds --context, --kubeconfig */
	r = kube_run(&a->kube, (const char *const *)argv + 1, NULL, out, sizeof(out));
	free(patch);
	if (!a->json)
		fputs(out, stdout);
	if (r == KUBE_MISSING)
		fprintf(stderr, "subway %s: kubectl is not installed (or not on PATH)\n", a->cmd);
	else if (r != 0)
		fprintf(stderr, "subway %s: kubectl patch failed (exit %d)\n", a->cmd, r);
	return r == 0 ? 0 : 1;
}

static int inject_run(struct inject_args *a)
{
	char manager[64] = "", image[256] = "", err[512];
	struct inject_result res = { 0 };
	struct jval *doc = NULL;
	const struct jval *w;
	char *line = NULL;
	int r = 1;

	if (!strcmp(a->cmd, "inject") && manager_values(a, manager, sizeof(manager), image, sizeof(image)) < 0)
		return 1;
	if (!(w = workload(a, &doc)))
		goto out;
	if ((!strcmp(a->cmd, "inject") ? inject_patch(w, a->ns, &a->o, &res, err, sizeof(err))
					: uninject_patch(w, a->ns, &res, err, sizeof(err))) < 0) {
		fprintf(stderr, "subway %s: %s\n", a->cmd, err);
		goto out;
	}
	if (!(line = inject_shell_line(&res, a->kube.context, a->kube.kubeconfig)))
		goto out;
	if ((a->json ? print_json(a, &res, line) : print_human(a, &res, line)) < 0)
		goto out;
	fflush(stdout);
	r = a->apply ? apply(a, &res) : 0;
out:
	free(line);
	jval_free(res.patch);
	jval_free(doc);
	return r;
}

static int inject_cmd_main(const char *cmd, int argc, char **argv)
{
	struct inject_args a = { .cmd = cmd };
	int r;

	for (int i = 1; i < argc; i++)
		if ((r = parse_one(&a, argc, argv, &i)) != 0)
			return r;
	if (a.help) {
		inject_usage(stdout, cmd);
		return 0;
	}
	if ((r = args_check(&a)) != 0)
		return r;
	return inject_run(&a);
}

int inject_main(int argc, char **argv)
{
	return inject_cmd_main("inject", argc, argv);
}

int uninject_main(int argc, char **argv)
{
	return inject_cmd_main("uninject", argc, argv);
}
