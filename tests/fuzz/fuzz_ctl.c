/* Control-socket requests, /proc/net/route text and resolv.conf files:
 * never crash; a request that parses encodes, and the encoding parses back
 * to the same request, and differs from it in no option; a parsed
 * resolv.conf renders, and the rendering parses back as subway's own file
 * with one nameserver. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ctlmsg.h"
#include "dns/resolv.h"
#include "vif/vif.h"

#include "fuzz.h"

static void check_resolv(const char *text, size_t size)
{
	static char out[RESOLV_OURS_MAX + 1], orig[RESOLV_FILE_MAX];
	const char *search[] = { "default.svc.cluster.local" };
	struct resolv_conf rc, back;
	struct resolv_render r = { &rc, text, size, 0xc6120001, search, 1, "/run/subway/x.saved", 7, 9 };
	ssize_t n;

	resolv_conf_parse(text, size, &rc);
	if (rc.n_ns > RESOLV_NS_MAX || rc.n_search > RESOLV_SEARCH_MAX || rc.n_opt > RESOLV_OPT_MAX)
		abort();
	resolv_conf_original(text, size, orig, sizeof(orig)); /* any bytes: no crash */
	if (size > RESOLV_FILE_MAX)
		return;
	n = resolv_conf_render(&r, out, sizeof(out));
	if (n < 0)
		abort();
	resolv_conf_parse(out, (size_t)n, &back);
	if (!back.ours || back.n_ns != 1 || back.ns[0] != 0xc6120001 || back.owner_pid != 7 || back.owner_netns != 9)
		abort();
	if (resolv_conf_original(out, (size_t)n, orig, sizeof(orig)) != (ssize_t)size || memcmp(orig, text, size))
		abort();
}

static void check_ctl(const char *text, size_t size)
{
	static char line[CTL_LINE_MAX + 1], again[CTL_LINE_MAX + 1];
	struct ctl_req req, back;
	char err[200], diff[1024];
	ssize_t n;

	if (ctl_parse(text, size, &req, err, sizeof(err)) < 0) {
		CHECK(err[0] != 0 && memchr(err, '\n', strlen(err)) == NULL);
		return;
	}
	n = ctl_encode(&req, line, sizeof(line), err, sizeof(err));
	CHECK(n > 0 && (size_t)n == strlen(line) && (size_t)n <= CTL_LINE_MAX);
	CHECK(ctl_parse(line, (size_t)n, &back, err, sizeof(err)) == 0);
	CHECK(memcmp(&req, &back, sizeof(req)) == 0);
	CHECK(ctl_encode(&back, again, sizeof(again), err, sizeof(err)) == n && !memcmp(line, again, (size_t)n));
	if (req.verb == CTL_CONNECT)
		CHECK(ctl_diff(&req, &back, diff, sizeof(diff)) == 0 && diff[0] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct local_route routes[16];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	check_ctl(text, size);
	vif_routes_parse(text, routes, 16);
	check_resolv(text, size);
	free(text);
	return 0;
}
