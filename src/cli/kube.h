/* The user's Kubernetes tools, for `subway install`, `inject` and
 * `uninject`: kubectl (with the user's --context and --kubeconfig), and
 * manifest files read as JSON (YAML through python3-yaml, as the lab
 * reads its manifests). */
#pragma once
#include <stddef.h>

#define KUBE_MISSING 127 /* kube_run: kubectl is not installed */

struct kube {
	const char *context, *kubeconfig; /* NULL: kubectl's own defaults */
};

/* kubectl [--context C] [--kubeconfig F] args... with input on its stdin
 * (NULL: none).  out gets its stdout, NUL-terminated (what does not fit
 * is dropped); its stderr goes to ours.  Its exit status, KUBE_MISSING,
 * or another -errno. */
int kube_run(const struct kube *k, const char *const args[], const char *input, char *out, size_t size);

/* The text of the manifest file at path as JSON: the file itself when
 * it is JSON, else its YAML documents as a JSON array.  A string to
 * free(), or NULL with err saying why (no file, not YAML, no python3-yaml). */
char *kube_manifest_json(const char *path, char *err, size_t errlen);
