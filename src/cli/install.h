/* `subway install` and `subway uninstall` (docs/install.md): the manifests
 * of deploy/subway.yaml filled in for one cluster, and the laptop's token
 * file.  `subway lab up` installs the same way into the lab. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "lab/text.h"

#define INSTALL_ADDRS_MAX 16
#define INSTALL_NODE_PORT 30443

/* What fills the template: everything but the secrets is an option. */
struct install_values {
	const char *image;        /* "subway:<version>" by default */
	uint16_t node_port;       /* 30000..32767 */
	struct cidr_list pod, svc; /* n == 0: the manager derives them */
	int n_addrs;              /* the nodes' (managers') addresses */
	uint32_t addrs[INSTALL_ADDRS_MAX];
	const char *token_line;   /* "token=<hex>" */
	const char *cert_pem, *key_pem;
};

/* Pure: tmpl (deploy/subway.yaml) with the __SUBWAY_...__ placeholders,
 * the image, the node port and the SUBWAY_* variables filled in, appended
 * to out.  0, or -EINVAL when a placeholder is missing from tmpl. */
int install_render(const char *tmpl, size_t len, const struct install_values *v, struct text *out);

/* Pure: the laptop's token file (token, manager endpoint, pin). */
void install_token_file(const struct install_values *v, const char *fingerprint, struct text *out);

/* Makes dir (0700) if needed and writes dir/subway.yaml and dir/token
 * (0600 both) with a fresh token, key and certificate; image NULL takes
 * the default.  0 or -errno, err naming what failed. */
int install_write(const char *dir, const struct install_values *opts, char *err, size_t errlen);
