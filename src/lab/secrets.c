/* The manager's secrets, as a cluster would hand them out:
 *
 *   token            for `connect --lab` (root, 0600): token=, manager=,
 *                    fingerprint= (the manager's certificate, pinned)
 *   manager/         the manager pod's volume, owned by the user the
 *                    manager runs as (nobody), 0700
 *   manager/token    the token alone, 0600
 *   manager/tls/     key.pem (0600) and cert.pem, made here so that the
 *                    fingerprint is known before the manager starts; the
 *                    manager loads them (--tls-dir) as it would at a restart
 *
 * With `up --insecure` there is no tls/ and no fingerprint. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "lab/lab.h"
#include "net/tls.h"

#define LAB_TOKEN_TEXT 320

int lab_manager_ids(uid_t *uid, gid_t *gid)
{
	const struct passwd *pw = getpwnam(LAB_MANAGER_USER);
	const struct group *gr = getgrnam(LAB_MANAGER_GROUP);

	*uid = pw ? pw->pw_uid : 65534;
	*gid = gr ? gr->gr_gid : 65534;
	return 0;
}

/* Writes text to path (mode 0600, owner uid:gid), replacing it. */
static int secret_write(const char *path, const char *text, uid_t uid, gid_t gid)
{
	int fd, r = 0;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 || fchown(fd, uid, gid) < 0 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		r = errno ? -errno : -EIO;
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		log_err("cannot write %s: %s", path, strerror(-r));
	return r;
}

/* manager/ and manager/tls/ with a key and certificate, owned by the
 * manager's user; fp gets the certificate's fingerprint. */
static int secret_tls(const struct lab *lab, uid_t uid, gid_t gid, uint8_t fp[TLS_FP_LEN])
{
	char dir[128], cert[160], key[160], err[300];
	bool created;

	lab_path(lab, dir, sizeof(dir), "manager/tls");
	if (tls_dir_ensure(dir, cert, key, sizeof(cert), &created, err, sizeof(err)) < 0 ||
	    tls_cert_fingerprint(cert, fp, err, sizeof(err)) < 0) {
		log_err("TLS for the manager: %s", err);
		return -EIO;
	}
	if (chown(dir, uid, gid) < 0 || chown(key, uid, gid) < 0 || chown(cert, uid, gid) < 0) {
		log_err("cannot give %s to the manager's user: %s", dir, strerror(errno));
		return -errno;
	}
	return 0;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

int lab_secrets_write(const struct lab *lab)
{
	char text[LAB_TOKEN_TEXT], tok[65], fph[TLS_FP_HEX_LEN + 1], endpoint[32], path[128];
	uint8_t key[32], fp[TLS_FP_LEN];
	uid_t uid;
	gid_t gid;
	int r;

	lab_manager_ids(&uid, &gid);
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		log_err("getrandom: %s", strerror(errno));
		return -EIO;
	}
	hex(tok, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	lab_path(lab, path, sizeof(path), "manager");
	r = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
	if (r == 0 && chown(path, uid, gid) < 0)
		r = -errno;
	if (r == 0 && !lab->insecure)
		r = secret_tls(lab, uid, gid, fp);
	if (r == 0) {
		lab_manager_endpoint(lab, endpoint, sizeof(endpoint));
		snprintf(text, sizeof(text), "token=%s\nmanager=%s\n%s%s%s", tok, endpoint,
			 lab->insecure ? "" : "fingerprint=", lab->insecure ? "" : tls_fp_str(fp, fph),
			 lab->insecure ? "" : "\n");
		lab_path(lab, path, sizeof(path), "token");
		r = secret_write(path, text, 0, 0);
	}
	if (r == 0) {
		snprintf(text, sizeof(text), "# the manager pod's copy\ntoken=%s\n", tok);
		lab_path(lab, path, sizeof(path), "manager/token");
		r = secret_write(path, text, uid, gid);
	}
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(text, sizeof(text));
	return r;
}
