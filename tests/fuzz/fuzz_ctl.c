/* Control-socket requests and /proc/net/route text. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl.h"
#include "vif/vif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	free(text);
	return 0;
}
