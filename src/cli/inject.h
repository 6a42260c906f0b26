/* `subway inject` and `subway uninject` (docs/install.md, "Agents"): the
 * JSON patch (RFC 6902) that adds subway's agent container to a
 * Deployment or StatefulSet, and the one that takes it out again.
 *
 * Pure: from the workload object as parsed JSON (common/jval.h) to a
 * patch; no I/O.  `subway lab inject` applies the same patches to the
 * workloads the lab holds (lab/workload.c).
 *
 * The agent container: the image (the manager's), `args: [agent]`, the
 * app container's env and envFrom copied (so the agent can report them;
 * `$(VAR)` references kept as they are), then the agent's own variables
 * (SUBWAY_MANAGER, SUBWAY_WORKLOAD, SUBWAY_PORTS, SUBWAY_AGENT_DIR,
 * SUBWAY_POD_NAME, SUBWAY_POD_NAMESPACE, SUBWAY_POD_IP: later entries win, so they do); uid 0
 * (how a container gets a capability at all) with every capability
 * dropped but NET_ADMIN, no privilege escalation, read-only root; the Secret `subway-agent` mounted
 * read-only at INJECT_AGENT_DIR. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "common/jval.h"

#define INJECT_AGENT "subway-agent" /* the container, its volume and the Secret */
#define INJECT_AGENT_DIR "/var/run/secrets/subway-agent"
#define INJECT_PORTS_MAX 16 /* what an agent reports (ICEPT_PORTS_MAX) */
#define INJECT_NAME_MAX 253 /* a Kubernetes object name */

struct inject_opts {
	const char *image;     /* the agent's image: the manager's */
	const char *manager;   /* SUBWAY_MANAGER: "IP:PORT" of the manager's ClusterIP service */
	const char *container; /* the app container; NULL: the first that is not the agent */
	/* --port: a port of the app container by name or number[/udp], or
	 * NAME:NUMBER[/udp] (NAME may be empty) for one it does not declare;
	 * none: every TCP and UDP port it declares. */
	const char *ports[INJECT_PORTS_MAX];
	int nports;
};

struct inject_result {
	char kind[16];  /* "Deployment" or "StatefulSet" */
	char name[INJECT_NAME_MAX + 1], ns[INJECT_NAME_MAX + 1];
	char container[INJECT_NAME_MAX + 1]; /* the app container (inject) */
	char ports[INJECT_PORTS_MAX * 24];   /* SUBWAY_PORTS (inject) */
	bool had_agent;     /* the workload had the agent already (replaced / removed) */
	struct jval *patch; /* the operations; the caller frees it */
};

/* The workload named name in doc: the object itself, a List's items or
 * an array of objects (a file's YAML documents).  kind: "Deployment",
 * "StatefulSet", or NULL for either.  An object that names a namespace
 * other than ns (when ns is not NULL) does not count.  NULL, err saying
 * what the document holds instead. */
const struct jval *inject_find(const struct jval *doc, const char *kind, const char *name, const char *ns,
			       char *err, size_t errlen);

/* The patch adding the agent to workload (replacing it when it is there
 * already, guarded by "test" operations); res->ns is the object's own
 * namespace, else ns, else "default".  0, or -EINVAL (err: what is wrong
 * with the object or the options) or -ENOMEM. */
int inject_patch(const struct jval *workload, const char *ns, const struct inject_opts *o,
		 struct inject_result *res, char *err, size_t errlen);

/* The patch removing the agent's container and volume, found by name
 * (each removal guarded by a "test" of the name); an empty patch when
 * the workload has neither. */
int uninject_patch(const struct jval *workload, const char *ns, struct inject_result *res, char *err,
		   size_t errlen);

/* Whether s is a Kubernetes object name (RFC 1123 subdomain). */
bool inject_name_ok(const char *s);

/* `kubectl [--context C] [--kubeconfig F] patch KIND NAME -n NS --type
 * json -p PATCH` for a shell: every argument that needs it single-quoted.
 * A string to free(), or NULL: no memory. */
char *inject_shell_line(const struct inject_result *res, const char *context, const char *kubeconfig);
/* The same as argv for kubectl, pointers into res and patch_text (the
 * patch, compact): argv has room for INJECT_ARGV entries. */
#define INJECT_ARGV 16
void inject_kubectl_argv(const struct inject_result *res, const char *context, const char *kubeconfig,
			 const char *patch_text, char *argv[INJECT_ARGV]);
