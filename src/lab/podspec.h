/* The manager's pod as the manifests describe it (deploy/subway.yaml, as
 * `subway install` writes it): what the lab's kubelet runs.
 *
 * podspec_parse is pure: it reads the manifests as JSON (a list of the
 * YAML documents, each Secret's data and stringData also given as
 * "entries": [{key, value}]: keys with dots cannot be named in a
 * jsonget path), which podspec_load makes with python3-yaml. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POD_COMMAND 4
#define POD_ARGS 24
#define POD_ENV 16
#define POD_VOLUMES 4
#define POD_ITEMS 8
#define POD_SECRET_KEYS 8
#define POD_STR 160
#define POD_SECRET_MAX 8192

struct pod_env {
	char name[64];
	char value[POD_STR]; /* "value" */
	char field[64];      /* or valueFrom.fieldRef.fieldPath */
};

struct pod_probe {
	bool set;
	uint16_t port;                 /* tcpSocket.port, a name resolved */
	unsigned initial_delay_s, period_s, timeout_s, failure_threshold;
};

struct pod_volume {
	char name[64];
	char secret[64];    /* secret.secretName */
	unsigned mode;      /* secret.defaultMode (0644 when absent) */
	int nitems;
	struct { char key[64], path[POD_STR]; } items[POD_ITEMS];
	char mount[POD_STR]; /* the container's mountPath ("" if not mounted) */
	bool read_only;
};

struct pod_secret {
	char key[64];
	char value[POD_SECRET_MAX];
	size_t len;
};

struct lab_podspec {
	char deployment[64], ns[64];
	char container[64], image[POD_STR];
	int ncommand, nargs, nenv, nvolumes, nsecrets;
	char command[POD_COMMAND][POD_STR];
	char args[POD_ARGS][POD_STR];
	struct pod_env env[POD_ENV];
	uint16_t port; /* the first containerPort */
	char port_name[32];
	bool has_user, has_group, has_fs_group;
	uint32_t user, group, fs_group;
	bool non_root, read_only_root, no_privilege_escalation, drop_all, seccomp_default;
	struct pod_probe liveness, readiness;
	struct pod_volume volumes[POD_VOLUMES];
	struct pod_secret secrets[POD_SECRET_KEYS]; /* the mounted Secret's entries */
};

/* Fills out from the JSON of the manifests: the first Deployment's first
 * container, its volumes and the Secret they name.  0, or -EINVAL with a
 * one-line reason in err (a missing field, a value too long). */
int podspec_parse(const char *json, size_t len, struct lab_podspec *out, char *err, size_t errlen);

/* Reads path (YAML) through python3-yaml, then podspec_parse.  out is
 * large: allocate it.  0 or -errno, err saying why. */
int podspec_load(const char *path, struct lab_podspec *out, char *err, size_t errlen);

/* The value of a secret entry, NULL if the Secret has no such key. */
const struct pod_secret *podspec_secret(const struct lab_podspec *s, const char *key);
