/* Control-socket requests, /proc/net/route text and resolv.conf files:
 * never crash; a parsed resolv.conf renders, and the rendering parses back
 * as subway's own file with one nameserver. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_req req;
	struct local_route routes[16];
	char err[160];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	ctl_parse(text, size, &req, err, sizeof(err));
	vif_routes_parse(text, routes, 16);
	check_resolv(text, size);
	free(text);
	return 0;
}
