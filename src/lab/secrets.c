/* The lab's secrets, made the way a user makes them for a real cluster:
 * `subway install` (cli/install.h) writes install/subway.yaml (the
 * manifests with a new token, key and certificate in the Secret) and
 * install/token; the laptop's token file is that token file:
 *
 *   token            for `connect --lab` (root, 0600): token=, manager=
 *                    (the first node's node port), fingerprint= (the
 *                    manager's certificate, pinned)
 *
 * With `up --insecure` the fingerprint line is left out. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/install.h"
#include "commands.h"
#include "common/log.h"
#include "common/util.h"
#include "lab/kubelet.h"
#include "lab/lab.h"

#define LAB_TOKEN_TEXT 1024

/* install/token's token=, manager= and (unless --insecure) fingerprint=
 * lines, without its comments. */
static int laptop_token(const struct lab *lab)
{
	char src[128], dst[128], text[LAB_TOKEN_TEXT], out[LAB_TOKEN_TEXT] = "";
	ssize_t n;
	size_t off = 0;
	int fd, r = 0;

	lab_path(lab, src, sizeof(src), "install/token");
	lab_path(lab, dst, sizeof(dst), "token");
	n = file_read_small(src, text, sizeof(text));
	if (n < 0)
		return (int)n;
	for (char *p = text, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		if (p[0] == '#' || (lab->insecure && !strncmp(p, "fingerprint=", 12)) || off + len >= sizeof(out))
			continue;
		memcpy(out + off, p, len);
		off += len;
	}
	unlink(dst);
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, out, off) != (ssize_t)off)
		r = -(errno ? errno : EIO);
	if (fd >= 0)
		close(fd);
	explicit_bzero(text, sizeof(text));
	explicit_bzero(out, sizeof(out));
	return r;
}

/* up --install DIR: that install's files, as they are. */
static int copy_install(const struct lab *lab, const char *dir)
{
	static const char *const files[] = { "subway.yaml", "token" };
	static char buf[256 * 1024];
	char from[4200], to[256];
	int r = mkdir_p(dir, 0700);

	for (size_t i = 0; i < ARRAY_SIZE(files) && r == 0; i++) {
		ssize_t n;
		snprintf(from, sizeof(from), "%s/%s", lab->install, files[i]);
		snprintf(to, sizeof(to), "%s/%s", dir, files[i]);
		n = file_read_small(from, buf, sizeof(buf));
		r = n < 0 ? (int)n : file_write(to, buf, (size_t)n, 0600);
		if (r < 0)
			log_err("--install %s: cannot copy %s: %s", lab->install, files[i], strerror(-r));
		explicit_bzero(buf, sizeof(buf));
	}
	return r;
}

int lab_secrets_write(const struct lab *lab)
{
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	struct install_values v = { .node_port = LAB_MANAGER_NODE_PORT };
	char dir[128], image[96], a[16], err[512];
	int r;

	/* The image from the registry on the server node, as the seed's
	 * Deployments name multi:5000/...; the nodes are the manager's
	 * addresses (its node port on each). */
	snprintf(image, sizeof(image), "%s:%d/subway:%s", ip4_str(ti->node_ip[0], a), KUBELET_REGISTRY_PORT,
		 SUBWAY_VERSION);
	v.image = image;
	v.n_addrs = LAB_NODES;
	memcpy(v.addrs, ti->node_ip, sizeof(ti->node_ip));
	lab_path(lab, dir, sizeof(dir), "install");
	if (lab->install)
		return copy_install(lab, dir) < 0 ? -EIO : laptop_token(lab);
	r = install_write(dir, &v, err, sizeof(err));
	if (r < 0) {
		log_err("subway install: %s", err);
		return r;
	}
	r = laptop_token(lab);
	if (r < 0)
		log_err("cannot write %s/token: %s", lab->dir, strerror(-r));
	return r;
}
