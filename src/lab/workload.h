/* The workloads the lab holds as manifests (workloads/<ns>/<name>.json:
 * the web Deployment), and `lab inject` / `lab uninject` (workload.c). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "lab/lab.h"
#include "lab/podspec.h"

struct jval;

/* The i-th workload the lab holds: false past the last. */
bool workload_held(size_t i, const char **ns, const char **name);
/* up: every held workload written as the lab starts it. */
int workload_write_all(const struct lab *lab);
/* The held workload ns/name (a jval to free), or NULL with err naming
 * the ones the lab holds. */
struct jval *workload_load(const struct lab *lab, const char *ns, const char *name, char *err, size_t errlen);
int workload_save(const struct lab *lab, const char *ns, const char *name, const struct jval *w);
/* The plan's pods a workload runs (its namespace, its selector's app). */
int workload_pods(const struct jval *w, const struct lab_pod *out[], int max);
/* The app container (the first) of pod's workload, as its server runs:
 * 0, or -errno with err saying why. */
int workload_app_spec(const struct lab *lab, const struct lab_pod *pod, struct lab_podspec *out, char *err,
		      size_t errlen);
/* `subway lab inject` (inject) or `uninject` of workload name in ns: exit code. */
int lab_inject(struct lab *lab, const char *name, const char *ns, bool inject);
