/* resolv.conf: parse, render, install, restore (see resolv.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dns/resolv.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* The next word of [*p, end) into w (size wsize); false at the end of the
 * line.  An overlong word is consumed and returned empty. */
static bool next_word(const char **p, const char *end, char *w, size_t wsize)
{
	const char *s = *p;
	size_t n = 0;

	while (s < end && is_space(*s))
		s++;
	if (s == end) {
		*p = s;
		return false;
	}
	while (s < end && !is_space(*s)) {
		if (n + 1 < wsize)
			w[n] = *s;
		n++;
		s++;
	}
	*p = s;
	w[n < wsize ? n : 0] = 0;
	return true;
}

/* "# Owner: subway daemon pid P, network namespace N" */
static void parse_owner(const char *s, const char *end, struct resolv_conf *rc)
{
	char line[128];
	size_t n = MIN((size_t)(end - s), sizeof(line) - 1);
	long pid;
	unsigned long ns;

	memcpy(line, s, n);
	line[n] = 0;
	if (sscanf(line, RESOLV_OWNER "pid %ld, network namespace %lu", &pid, &ns) == 2 && pid > 0) {
		rc->owner_pid = pid;
		rc->owner_netns = ns;
	}
}

static void parse_line(const char *s, const char *end, struct resolv_conf *rc)
{
	char key[16], w[256];
	uint32_t a;

	if (rc->ours && (size_t)(end - s) > strlen(RESOLV_OWNER) && !memcmp(s, RESOLV_OWNER, strlen(RESOLV_OWNER)))
		parse_owner(s, end, rc);
	if (!next_word(&s, end, key, sizeof(key)) || key[0] == '#' || key[0] == ';')
		return;
	if (!strcmp(key, "nameserver")) {
		if (!next_word(&s, end, w, sizeof(w)))
			return;
		if (ip4_parse(w, &a) == 0) {
			if (rc->n_ns < RESOLV_NS_MAX)
				rc->ns[rc->n_ns++] = a;
		} else if (strchr(w, ':')) {
			rc->n_ns6++;
		}
	} else if (!strcmp(key, "search") || !strcmp(key, "domain")) {
		rc->n_search = 0; /* the last one wins */
		while (next_word(&s, end, w, sizeof(w)) && rc->n_search < RESOLV_SEARCH_MAX)
			if (w[0] && w[0] != '#' && w[0] != ';')
				snprintf(rc->search[rc->n_search++], sizeof(rc->search[0]), "%s", w);
	} else if (!strcmp(key, "options")) {
		while (next_word(&s, end, w, sizeof(w)) && rc->n_opt < RESOLV_OPT_MAX)
			if (w[0] && strlen(w) < sizeof(rc->opt[0]))
				snprintf(rc->opt[rc->n_opt++], sizeof(rc->opt[0]), "%s", w);
	}
}

void resolv_conf_parse(const char *text, size_t len, struct resolv_conf *rc)
{
	const char *p = text, *end = text + len;

	memset(rc, 0, sizeof(*rc));
	rc->ours = len >= strlen(RESOLV_MARK) && !memcmp(text, RESOLV_MARK, strlen(RESOLV_MARK));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		parse_line(p, le, rc);
		p = nl ? nl + 1 : end;
	}
}

static bool listed(const char *const *list, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcasecmp(list[i], s))
			return true;
	return false;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The original, base64 in comment lines of 64 characters. */
static void embed(FILE *fp, const char *data, size_t len)
{
	fputs("# Should that copy be lost (a reboot), the original is here too: `subway quit` puts it back.\n", fp);
	for (size_t i = 0; i < len; i += 48) {
		fputs(RESOLV_EMBED_TAG, fp);
		for (size_t k = i; k < MIN(len, i + 48); k += 3) {
			uint32_t v = (uint32_t)(uint8_t)data[k] << 16 | (k + 1 < len ? (uint32_t)(uint8_t)data[k + 1] << 8 : 0) |
				     (k + 2 < len ? (uint8_t)data[k + 2] : 0);
			fputc(b64[v >> 18 & 63], fp);
			fputc(b64[v >> 12 & 63], fp);
			fputc(k + 1 < len ? b64[v >> 6 & 63] : '=', fp);
			fputc(k + 2 < len ? b64[v & 63] : '=', fp);
		}
		fputc('\n', fp);
	}
	fprintf(fp, RESOLV_EMBED_END "%zu\n", len);
}

static void render_lists(FILE *fp, const struct resolv_render *r)
{
	const struct resolv_conf *orig = r->orig;
	bool opts = false;

	if (r->n_search || orig->n_search) {
		fputs("search", fp);
		for (int i = 0; i < r->n_search; i++)
			fprintf(fp, " %s", r->search[i]);
		for (int i = 0; i < orig->n_search; i++)
			if (!listed(r->search, r->n_search, orig->search[i]))
				fprintf(fp, " %s", orig->search[i]);
		fputc('\n', fp);
	}
	/* One nameserver: "rotate" means nothing, and it is a glibc extension
	 * other resolvers may take as "query them all". */
	for (int i = 0; i < orig->n_opt; i++)
		if (strcmp(orig->opt[i], "rotate")) {
			fprintf(fp, "%s %s", opts ? "" : "options", orig->opt[i]);
			opts = true;
		}
	if (opts)
		fputc('\n', fp);
}

ssize_t resolv_conf_render(const struct resolv_render *r, char *out, size_t cap)
{
	FILE *fp = fmemopen(out, cap, "w");
	char ip[16];
	long n;

	if (!fp)
		return -ENOMEM;
	fprintf(fp, RESOLV_MARK " while connected to a cluster (`subway quit` disconnects).\n"
		    RESOLV_OWNER "pid %ld, network namespace %lu\n"
		    "# The original is saved in %s and comes back on quit.\n"
		    "nameserver %s\n", r->pid, r->netns, r->saved_path, ip4_str(r->server, ip));
	render_lists(fp, r);
	embed(fp, r->orig_text, r->orig_len);
	fflush(fp);
	n = ftell(fp);
	if (ferror(fp) || n < 0 || (size_t)n + 1 >= cap) {
		fclose(fp);
		return -ENOSPC;
	}
	fclose(fp);
	out[n] = 0;
	return n;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

/* Appends the base64 of one line to out; -ENOENT on a bad character. */
static int unembed_line(const char *c, const char *end, char *out, size_t cap, size_t *n, uint32_t *acc, int *bits,
			bool *pad)
{
	for (; c < end; c++) {
		int v = b64_value(*c);
		if (*c == '=') {
			*pad = true;
			continue;
		}
		if (v < 0 || *pad)
			return -ENOENT;
		*acc = (*acc << 6 | (uint32_t)v) & 0xffffff;
		*bits += 6;
		if (*bits >= 8) {
			*bits -= 8;
			if (*n >= cap)
				return -ENOENT;
			out[(*n)++] = (char)(*acc >> *bits);
		}
	}
	return 0;
}

ssize_t resolv_conf_original(const char *text, size_t len, char *out, size_t cap)
{
	const char *p = text, *end = text + len;
	size_t n = 0, tag = strlen(RESOLV_EMBED_TAG), fin = strlen(RESOLV_EMBED_END);
	uint32_t acc = 0;
	int bits = 0;
	bool pad = false;

	if (len < strlen(RESOLV_MARK) || memcmp(text, RESOLV_MARK, strlen(RESOLV_MARK)))
		return -ENOENT;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		size_t ll = (size_t)(le - p);
		if (ll > tag && !memcmp(p, RESOLV_EMBED_TAG, tag)) {
			if (unembed_line(p + tag, le, out, cap, &n, &acc, &bits, &pad) < 0)
				return -ENOENT;
		} else if (ll > fin && ll < fin + 12 && !memcmp(p, RESOLV_EMBED_END, fin)) {
			char num[16];
			uint64_t want;
			memcpy(num, p + fin, ll - fin);
			num[ll - fin] = 0;
			return u64_parse(num, RESOLV_FILE_MAX, &want) == 0 && want == n ? (ssize_t)n : -ENOENT;
		}
		p = nl ? nl + 1 : end;
	}
	return -ENOENT;
}

int resolv_saved_path(char *buf, size_t size)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0)
		return -errno;
	snprintf(buf, size, "/run/subway/resolv-%lu.saved", (unsigned long)st.st_ino);
	return 0;
}

/* Writes data over path in place (same inode, mode and owner). */
static int write_in_place(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	int ret = 0;

	/* A symlink (to systemd's or NetworkManager's file) is followed on purpose. */
	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 && errno != EINVAL)
		ret = -errno;
out:
	close(fd);
	return ret;
}

/* The saved copy, atomically: a temporary file, fsync, rename. */
static int save_copy(const char *path, const char *data, size_t len)
{
	char tmp[128];
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0)
		ret = -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	return ret;
}

int resolv_install(const char *orig, size_t orig_len, const char *text, size_t text_len)
{
	char saved[108];
	int ret;

	if ((ret = resolv_saved_path(saved, sizeof(saved))) < 0)
		return ret;
	mkdir_p("/run/subway", 0755);
	if ((ret = save_copy(saved, orig, orig_len)) < 0)
		return ret;
	if ((ret = write_in_place(RESOLV_PATH, text, text_len)) < 0) {
		/* A failed or partial write: put back what was there. */
		write_in_place(RESOLV_PATH, orig, orig_len);
		unlink(saved);
	}
	return ret;
}

/* Does the daemon that wrote rc still run?  Its pid, alive, in the
 * network namespace it named (a pid reused after a reboot is not it).  A
 * caller that may not look into root's processes (EACCES) takes a live
 * pid, not a zombie (a killed daemon nobody reaped), for it. */
static bool owner_alive(const struct resolv_conf *rc)
{
	char path[64], stat_line[512], *paren;
	struct stat st;

	if (!rc->owner_pid || rc->owner_pid > INT32_MAX)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/ns/net", rc->owner_pid);
	if (stat(path, &st) == 0)
		return (unsigned long)st.st_ino == rc->owner_netns;
	if (errno != EACCES)
		return false;
	/* "pid (comm) S ...": the state follows the last ')' */
	snprintf(path, sizeof(path), "/proc/%ld/stat", rc->owner_pid);
	if (file_read_small(path, stat_line, sizeof(stat_line)) <= 0 || !(paren = strrchr(stat_line, ')')))
		return false;
	return paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* The original for the file cur (subway's): the saved copy if there is
 * one, else the copy in the file, unless its daemon still runs elsewhere
 * (a namespace sharing this file): -EBUSY then.  Length or -errno. */
static ssize_t original_for(const char *saved, bool have_saved, const char *cur, size_t clen, char *orig)
{
	struct resolv_conf rc;
	ssize_t olen;
	struct stat self;

	if (have_saved && (olen = file_read_small(saved, orig, RESOLV_FILE_MAX + 1)) >= 0 && olen < RESOLV_FILE_MAX)
		return olen;
	resolv_conf_parse(cur, clen, &rc);
	if (stat("/proc/self/ns/net", &self) == 0 && rc.owner_netns != (unsigned long)self.st_ino && owner_alive(&rc))
		return -EBUSY;
	olen = resolv_conf_original(cur, clen, orig, RESOLV_FILE_MAX);
	if (olen < 0)
		log_err("%s is subway's, but no copy of the original is left: fix it by hand", RESOLV_PATH);
	return olen < 0 ? -ENOENT : olen;
}

int resolv_restore(void)
{
	char saved[108];
	char *orig = NULL, *cur = NULL;
	ssize_t olen, clen;
	bool have_saved;
	int ret;

	if ((ret = resolv_saved_path(saved, sizeof(saved))) < 0)
		return ret;
	have_saved = access(saved, F_OK) == 0;
	ret = -ENOMEM;
	if (!(orig = malloc(RESOLV_FILE_MAX + 1)) || !(cur = malloc(RESOLV_OURS_MAX + 1)))
		goto out;
	clen = file_read_small(RESOLV_PATH, cur, RESOLV_OURS_MAX + 1);
	ret = 0;
	if (clen < 0 || (size_t)clen < strlen(RESOLV_MARK) || memcmp(cur, RESOLV_MARK, strlen(RESOLV_MARK))) {
		if (have_saved)
			log_warn("%s changed since subway wrote it: left as it is", RESOLV_PATH);
	} else if ((olen = original_for(saved, have_saved, cur, (size_t)clen, orig)) == -EBUSY) {
		ret = 0; /* the daemon of another namespace sharing the file owns it */
	} else if (olen < 0) {
		ret = (int)olen;
		goto out; /* keep the saved copy, if any, for another try */
	} else {
		if ((ret = write_in_place(RESOLV_PATH, orig, (size_t)olen)) < 0)
			goto out;
		ret = 1;
	}
	if (have_saved)
		unlink(saved);
out:
	free(orig);
	free(cur);
	return ret;
}

int resolv_stale(bool daemon_here, struct resolv_conf *rc)
{
	char *cur = malloc(RESOLV_OURS_MAX + 1);
	struct stat self;
	ssize_t n;
	int ret;

	memset(rc, 0, sizeof(*rc));
	if (!cur)
		return -ENOMEM;
	if ((n = file_read_small(RESOLV_PATH, cur, RESOLV_OURS_MAX + 1)) < 0) {
		ret = (int)n;
		goto out;
	}
	resolv_conf_parse(cur, (size_t)n, rc);
	if (!rc->ours) {
		ret = 0;
	} else if (stat("/proc/self/ns/net", &self) < 0) {
		ret = -errno;
	} else if (daemon_here && (!rc->owner_netns || rc->owner_netns == (unsigned long)self.st_ino)) {
		ret = 0; /* this namespace's daemon answers: the file is its */
	} else {
		ret = !owner_alive(rc);
	}
out:
	free(cur);
	return ret;
}
