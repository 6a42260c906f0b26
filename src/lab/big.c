/* The /big file web serves: LAB_BIG_SIZE bytes of fixed pseudo-random
 * content (splitmix64 from a fixed seed), so every lab serves the same
 * bytes and `lab status` can print their sha256. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "lab/lab.h"

#define BIG_SEED 0x5375627761794c61ull /* "SubwayLa" */
#define BIG_CHUNK (1u << 20)

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int big_generate(int fd, EVP_MD_CTX *md)
{
	uint64_t *chunk = malloc(BIG_CHUNK), seed = BIG_SEED;
	int r = 0;

	if (!chunk)
		return -ENOMEM;
	for (uint64_t off = 0; off < LAB_BIG_SIZE && r == 0; off += BIG_CHUNK) {
		for (size_t i = 0; i < BIG_CHUNK / sizeof(uint64_t); i++)
			chunk[i] = splitmix64(&seed);
		if (EVP_DigestUpdate(md, chunk, BIG_CHUNK) != 1)
			r = -EIO;
		if (r == 0)
			r = write_all(fd, chunk, BIG_CHUNK);
	}
	free(chunk);
	return r;
}

int big_ensure(const char *path, char sha_hex[65])
{
	char tmp[160], shapath[160];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct stat st;
	int fd = -1, r = 0;

	snprintf(shapath, sizeof(shapath), "%s.sha256", path);
	if (stat(path, &st) == 0 && (uint64_t)st.st_size == LAB_BIG_SIZE &&
	    file_read_small(shapath, sha_hex, 65) == 64)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (!md || fd < 0 || fchmod(fd, 0644) < 0) {
		r = md ? -errno : -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		r = -EIO;
		goto out;
	}
	r = big_generate(fd, md);
	if (r == 0 && EVP_DigestFinal_ex(md, digest, &dlen) != 1)
		r = -EIO;
	if (r == 0 && close(fd) < 0)
		r = -errno;
	fd = -1;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r == 0) {
		hex_encode(digest, dlen, sha_hex);
		r = file_write(shapath, sha_hex, 64, 0644);
	}
out:
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		log_err("cannot write %s: %s", path, strerror(-r));
		unlink(tmp);
	}
	EVP_MD_CTX_free(md);
	return r;
}
