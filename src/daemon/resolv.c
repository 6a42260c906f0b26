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
#include "daemon/resolv.h"

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

static void parse_line(const char *s, const char *end, struct resolv_conf *rc)
{
	char key[16], w[256];
	uint32_t a;

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

ssize_t resolv_conf_render(const struct resolv_conf *orig, uint32_t server, const char *const *search, int n_search,
			   const char *saved_path, char *out, size_t cap)
{
	FILE *fp = fmemopen(out, cap, "w");
	char ip[16];
	bool opts = false;
	long n;

	if (!fp)
		return -ENOMEM;
	fprintf(fp, RESOLV_MARK " while connected to a cluster (`subway quit` disconnects).\n"
		    "# The original is saved in %s and comes back on quit.\n"
		    "nameserver %s\n", saved_path, ip4_str(server, ip));
	if (n_search || orig->n_search) {
		fputs("search", fp);
		for (int i = 0; i < n_search; i++)
			fprintf(fp, " %s", search[i]);
		for (int i = 0; i < orig->n_search; i++)
			if (!listed(search, n_search, orig->search[i]))
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

int resolv_restore(void)
{
	char saved[108];
	char *orig = NULL, *cur = NULL;
	ssize_t olen, clen;
	int ret;

	if ((ret = resolv_saved_path(saved, sizeof(saved))) < 0)
		return ret;
	if (access(saved, F_OK) < 0)
		return 0;
	ret = -ENOMEM;
	if (!(orig = malloc(RESOLV_FILE_MAX + 1)) || !(cur = malloc(RESOLV_FILE_MAX + 1)))
		goto out;
	if ((olen = file_read_small(saved, orig, RESOLV_FILE_MAX + 1)) < 0) {
		ret = (int)olen;
		goto out;
	}
	clen = file_read_small(RESOLV_PATH, cur, RESOLV_FILE_MAX + 1);
	if (clen >= 0 && (size_t)clen >= strlen(RESOLV_MARK) && !memcmp(cur, RESOLV_MARK, strlen(RESOLV_MARK))) {
		if ((ret = write_in_place(RESOLV_PATH, orig, (size_t)olen)) < 0)
			goto out;
		ret = 1;
	} else {
		log_warn("%s changed since subway wrote it: left as it is", RESOLV_PATH);
		ret = 0;
	}
	unlink(saved);
out:
	free(orig);
	free(cur);
	return ret;
}
