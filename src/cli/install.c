/* `subway install` and `subway uninstall` (install.h, docs/install.md). */
#include "cli/install.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/manifest.h"
#include "commands.h"
#include "common/run.h"
#include "net/tls.h"
#include "proto/auth.h"

#define PEM_MAX 8192

/* ---- rendering (pure) ---- */

enum { PH_TOKEN, PH_CERT, PH_KEY, PH_ENV, PH_IMAGE, PH_NODE_PORT, PH_MAX_ };

static size_t indent_of(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && line[i] == ' ')
		i++;
	return i;
}

static bool starts(const char *line, size_t n, size_t ind, const char *word)
{
	size_t w = strlen(word);
	return n - ind >= w && !memcmp(line + ind, word, w);
}

/* "  key: |" and the value's lines, two spaces deeper. */
static void render_block(struct text *t, const char *line, size_t ind, const char *value)
{
	const char *colon = strchr(line + ind, ':');
	const char *p = value;

	text_printf(t, "%.*s |\n", (int)(colon - line + 1), line);
	while (*p) {
		size_t n = strcspn(p, "\n");
		text_printf(t, "%*s%.*s\n", (int)ind + 2, "", (int)n, p);
		p += n + (p[n] == '\n');
	}
}

static void render_list(struct text *t, size_t ind, const char *name, const struct cidr_list *l)
{
	char buf[20];

	text_printf(t, "%*s- name: %s\n%*s  value: \"", (int)ind, "", name, (int)ind, "");
	for (int i = 0; i < l->n; i++)
		text_printf(t, "%s%s", i ? "," : "", cidr4_str(&l->v[i], buf));
	text_printf(t, "\"\n");
}

/* The SUBWAY_* variables for what was given; nothing else (derived). */
static void render_env(struct text *t, size_t ind, const struct install_values *v)
{
	char buf[16];

	text_printf(t, "%*s# set by subway install; the manager derives what is not here\n", (int)ind, "");
	if (v->pod.n)
		render_list(t, ind, "SUBWAY_POD_CIDR", &v->pod);
	if (v->svc.n)
		render_list(t, ind, "SUBWAY_SERVICE_CIDR", &v->svc);
	if (v->n_addrs) {
		text_printf(t, "%*s- name: SUBWAY_NODES\n%*s  value: \"", (int)ind, "", (int)ind, "");
		for (int i = 0; i < v->n_addrs; i++)
			text_printf(t, "%s%s", i ? "," : "", ip4_str(v->addrs[i], buf));
		text_printf(t, "\"\n");
	}
}

/* Which placeholder a line holds, or -1. */
static int placeholder(const char *line, size_t n, size_t ind)
{
	static const char *const marks[] = { [PH_TOKEN] = "\"__SUBWAY_TOKEN__\"", [PH_CERT] = "\"__SUBWAY_TLS_CERT__\"",
					     [PH_KEY] = "\"__SUBWAY_TLS_KEY__\"", [PH_ENV] = "# __SUBWAY_ENV__" };

	for (int i = 0; i <= PH_ENV; i++) {
		size_t m = strlen(marks[i]);
		if (n >= m && !memcmp(line + n - m, marks[i], m))
			return i;
	}
	if (starts(line, n, ind, "image: "))
		return PH_IMAGE;
	if (starts(line, n, ind, "nodePort: "))
		return PH_NODE_PORT;
	return -1;
}

static void render_line(struct text *t, int ph, const char *line, size_t n, size_t ind,
			const struct install_values *v)
{
	char copy[256];

	snprintf(copy, sizeof(copy), "%.*s", (int)n, line);
	switch (ph) {
	case PH_TOKEN:
		render_block(t, copy, ind, v->token_line);
		break;
	case PH_CERT:
		render_block(t, copy, ind, v->cert_pem);
		break;
	case PH_KEY:
		render_block(t, copy, ind, v->key_pem);
		break;
	case PH_ENV:
		render_env(t, ind, v);
		break;
	case PH_IMAGE:
		text_printf(t, "%*simage: %s\n", (int)ind, "", v->image);
		break;
	case PH_NODE_PORT:
		text_printf(t, "%*snodePort: %u\n", (int)ind, "", v->node_port);
		break;
	default:
		text_printf(t, "%.*s\n", (int)n, line);
	}
}

int install_render(const char *tmpl, size_t len, const struct install_values *v, struct text *out)
{
	unsigned seen = 0;
	size_t off = 0;

	while (off < len) {
		const char *line = tmpl + off, *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off, ind = indent_of(line, n);
		int ph = placeholder(line, n, ind);

		if (ph >= 0)
			seen |= 1u << ph;
		render_line(out, ph, line, n, ind, v);
		off += n + 1;
	}
	return seen == (1u << PH_MAX_) - 1 ? text_error(out) : -EINVAL;
}

void install_token_file(const struct install_values *v, const char *fingerprint, struct text *out)
{
	char a[16];

	text_printf(out, "# subway token file (subway install): keep it as secret as a kubeconfig\n%s\n",
		    v->token_line);
	if (v->n_addrs)
		text_printf(out, "manager=%s:%u\n", ip4_str(v->addrs[0], a), v->node_port);
	text_printf(out, "fingerprint=%s\n", fingerprint);
	for (int i = 1; i < v->n_addrs; i++)
		text_printf(out, "# also: connect --manager %s:%u --token-file ...\n", ip4_str(v->addrs[i], a),
			    v->node_port);
}

/* ---- writing ---- */

/* path replaced by text (mode 0600), through a temporary file. */
static int write_secret(const char *path, const struct text *t, char *err, size_t errlen)
{
	char tmp[4200];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, text_str(t), t->len) != (ssize_t)t->len)
		r = -(errno ? errno : EIO);
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-r));
	}
	return r;
}

/* A new key and certificate, as PEM text, made in a private directory
 * under dir that is gone again afterwards. */
static int make_tls(const char *dir, char *cert, char *key, char fp[TLS_FP_HEX_LEN + 1], char *err, size_t errlen)
{
	char tmp[4200], cpath[4300], kpath[4300];
	uint8_t raw[TLS_FP_LEN];
	int r;

	snprintf(tmp, sizeof(tmp), "%s/.tls-XXXXXX", dir);
	if (!mkdtemp(tmp)) {
		snprintf(err, errlen, "cannot create a directory in %s: %s", dir, strerror(errno));
		return -errno;
	}
	snprintf(cpath, sizeof(cpath), "%s/cert.pem", tmp);
	snprintf(kpath, sizeof(kpath), "%s/key.pem", tmp);
	r = tls_cert_create(cpath, kpath, err, errlen);
	if (r == 0)
		r = tls_cert_fingerprint(cpath, raw, err, errlen);
	if (r == 0 && (file_read_small(cpath, cert, PEM_MAX) <= 0 || file_read_small(kpath, key, PEM_MAX) <= 0)) {
		snprintf(err, errlen, "cannot read back the key and certificate in %s", tmp);
		r = -EIO;
	}
	if (r == 0)
		tls_fp_str(raw, fp);
	unlink(kpath);
	unlink(cpath);
	rmdir(tmp);
	return r;
}

static void hex32(const uint8_t *p, char *out)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

int install_write(const char *dir, const struct install_values *opts, char *err, size_t errlen)
{
	char image[128], path[4200], tok[80], fp[TLS_FP_HEX_LEN + 1];
	char *cert = calloc(1, PEM_MAX), *key = calloc(1, PEM_MAX);
	struct install_values v = *opts;
	struct text yaml, token;
	uint8_t raw[32];
	int r = cert && key ? 0 : -ENOMEM;

	text_init(&yaml);
	text_init(&token);
	snprintf(image, sizeof(image), "subway:%s", SUBWAY_VERSION);
	v.image = v.image ? v.image : image;
	v.node_port = v.node_port ? v.node_port : INSTALL_NODE_PORT;
	if (r == 0 && (r = mkdir_p(dir, 0700)) < 0)
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-r));
	if (r == 0 && (r = auth_random(raw, sizeof(raw))) < 0)
		snprintf(err, errlen, "no random bytes for the token: %s", strerror(-r));
	if (r == 0)
		r = make_tls(dir, cert, key, fp, err, errlen);
	if (r == 0) {
		memcpy(tok, "token=", 6);
		hex32(raw, tok + 6);
		v.token_line = tok;
		v.cert_pem = cert;
		v.key_pem = key;
		if (install_render(install_manifest, install_manifest_len, &v, &yaml) < 0) {
			snprintf(err, errlen, "the compiled-in manifest lacks a placeholder (a build problem)");
			r = -EINVAL;
		}
	}
	if (r == 0) {
		snprintf(path, sizeof(path), "%s/subway.yaml", dir);
		r = write_secret(path, &yaml, err, errlen);
	}
	if (r == 0) {
		install_token_file(&v, fp, &token);
		snprintf(path, sizeof(path), "%s/token", dir);
		r = write_secret(path, &token, err, errlen);
	}
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(tok, sizeof(tok));
	if (key)
		explicit_bzero(key, PEM_MAX);
	if (yaml.buf)
		explicit_bzero(yaml.buf, yaml.cap);
	if (token.buf)
		explicit_bzero(token.buf, token.cap);
	text_free(&yaml);
	text_free(&token);
	free(cert);
	free(key);
	return r;
}
