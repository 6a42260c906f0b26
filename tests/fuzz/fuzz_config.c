/* libFuzzer target for configuration values: what `subway manager`,
 * `connect`, the token file and `subway lab` take from a command line or a
 * file (src/common/util.c, src/proto/auth.c, src/lab/plan.c): CIDR lists,
 * IPv4 endpoints, ports, bounded numbers, certificate fingerprints, lab
 * names and topologies.  Input: one selector byte, then the text.
 * What parses prints back to what a strict reader would accept: a CIDR
 * list re-formats and re-parses to itself, an endpoint's port is not 0, a
 * number is within its bound, a name keeps to its alphabet. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lab/plan.h"
#include "proto/auth.h"
#include "fuzz.h"


static void cidrs(const char *s)
{
	struct cidr_list l, again;
	char text[CIDR_LIST_MAX * 20], buf[20];
	size_t off = 0;

	if (cidr_list_parse(s, &l) < 0)
		return;
	CHECK(l.n >= 1 && l.n <= CIDR_LIST_MAX);
	for (int i = 0; i < l.n; i++) {
		CHECK(l.v[i].len <= 32 && (l.v[i].addr & ~cidr4_mask(l.v[i].len)) == 0);
		CHECK(cidr4_contains(&l.v[i], l.v[i].addr));
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s", i ? "," : "", cidr4_str(&l.v[i], buf));
	}
	CHECK(cidr_list_parse(text, &again) == 0 && again.n == l.n);
	for (int i = 0; i < l.n; i++)
		CHECK(again.v[i].addr == l.v[i].addr && again.v[i].len == l.v[i].len);
}

static void numbers(const char *s)
{
	uint32_t a;
	uint16_t port;
	uint64_t v;
	char ip[16];

	if (endpoint_parse(s, &a, &port) == 0)
		CHECK(port != 0);
	if (ip4_parse(s, &a) == 0) {
		uint32_t b;
		CHECK(ip4_parse(ip4_str(a, ip), &b) == 0 && a == b);
	}
	if (port_parse(s, &port) == 0)
		CHECK(port != 0);
	if (u64_parse(s, 300000, &v) == 0)
		CHECK(v <= 300000);
}

static void names(const char *s)
{
	uint8_t fp[32];
	char err[128];
	enum lab_topo t;

	if (auth_fingerprint_parse(s, fp) == 0)
		CHECK(strlen(s) == 71);
	if (lab_name_check(s, err, sizeof(err)) == 0) {
		CHECK(strlen(s) >= 1 && strlen(s) <= LAB_NAME_MAX && s[strlen(s) - 1] != '-');
		CHECK(strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s));
	}
	if (lab_topo_parse(s, &t) == 0)
		CHECK(!strcmp(lab_topo_name(t), s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1 || size > 4096)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	switch (data[0] % 3) {
	case 0: cidrs(s); break;
	case 1: numbers(s); break;
	default: names(s); break;
	}
	free(s);
	return 0;
}
