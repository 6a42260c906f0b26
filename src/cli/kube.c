/* kubectl and manifest files (kube.h). */
#include "cli/kube.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/run.h"
#include "common/util.h"

#define KUBE_ARGS 24
#define KUBE_TIMEOUT_MS 120000
#define MANIFEST_MAX (4 << 20)

int kube_run(const struct kube *k, const char *const args[], const char *input, char *out, size_t size)
{
	char *argv[KUBE_ARGS] = { "kubectl" };
	struct run_opts o = { .input = input, .out = out, .out_size = size, .quiet = true,
			      .timeout_ms = KUBE_TIMEOUT_MS, .stderr_fd = 2 };
	int n = 1, r;

	if (k && k->context) {
		argv[n++] = "--context";
		argv[n++] = (char *)k->context;
	}
	if (k && k->kubeconfig) {
		argv[n++] = "--kubeconfig";
		argv[n++] = (char *)k->kubeconfig;
	}
	for (int i = 0; args[i]; i++) {
		if (n + 1 >= KUBE_ARGS)
			return -E2BIG;
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;
	fflush(NULL);
	r = run_argv(argv, &o);
	return r == -ENOENT ? KUBE_MISSING : r;
}

/* python3-yaml: every document, as JSON (dates and the like as strings). */
static const char yaml_to_json[] =
	"import json, sys, yaml\n"
	"json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout, default=str)\n";

char *kube_manifest_json(const char *path, char *err, size_t errlen)
{
	char *argv[] = { "/usr/bin/python3", "-c", (char *)yaml_to_json, NULL };
	char *text = malloc(MANIFEST_MAX), *json = NULL;
	struct run_opts o = { .out_size = MANIFEST_MAX, .quiet = true, .timeout_ms = 30000 };
	ssize_t n = text ? file_read_small(path, text, MANIFEST_MAX) : -ENOMEM;
	size_t i = 0;
	int r;

	if (n < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror((int)-n));
		goto fail;
	}
	if ((size_t)n >= MANIFEST_MAX - 1) {
		snprintf(err, errlen, "%s is larger than %d MiB", path, MANIFEST_MAX >> 20);
		goto fail;
	}
	while (i < (size_t)n && strchr(" \t\r\n", text[i]))
		i++;
	if (i < (size_t)n && (text[i] == '{' || text[i] == '['))
		return text; /* JSON already */
	json = malloc(MANIFEST_MAX);
	if (!json) {
		snprintf(err, errlen, "no memory");
		goto fail;
	}
	o.input = text;
	o.out = json;
	r = run_argv(argv, &o);
	if (r != 0) {
		const char *last = strrchr(json, '\n');
		while (last && last > json && !last[1]) /* the last line that says something */
			last = memrchr(json, '\n', (size_t)(last - json));
		snprintf(err, errlen, "%s is not JSON, and python3-yaml cannot read it as YAML%s%.200s", path,
			 r == 127 || r == -ENOENT ? " (is python3-yaml installed?)" : ": ",
			 r == 127 || r == -ENOENT ? "" : last ? last + 1 : json);
		err[strcspn(err, "\n")] = 0;
		goto fail;
	}
	free(text);
	return json;
fail:
	free(text);
	free(json);
	return NULL;
}
