/* Datagrams framed on a stream (src/net/dgbridge.c, dgframe_take), as the
 * manager or an agent may send them: the input cut at a position its first
 * byte picks; every datagram taken lies inside what was given, the bytes
 * kept are exactly those not taken, and re-framing what was taken gives
 * back the input's prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dgbridge.h"

#include "fuzz.h"

static uint8_t buf[DGB_FRAME + 4096], again[DGB_FRAME + 4096];
static size_t again_len;

static void take(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	CHECK(n <= DGB_MAX && p >= buf && p + n <= buf + sizeof(buf));
	again[again_len++] = (uint8_t)(n >> 8);
	again[again_len++] = (uint8_t)n;
	memcpy(again + again_len, p, n);
	again_len += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t have = 0, fed = 0, cut;

	if (size < 1 || size - 1 > sizeof(buf))
		return 0;
	cut = 1 + data[0] % (size > 1 ? size - 1 : 1);
	data++;
	size--;
	again_len = 0;
	while (fed < size) { /* in two pieces at most, as the stream may cut them */
		size_t k = fed == 0 && cut < size ? cut : size - fed;
		memcpy(buf + have, data + fed, k);
		have += k;
		fed += k;
		dgframe_take(buf, &have, take, NULL);
	}
	CHECK(again_len + have == size);
	CHECK(memcmp(again, data, again_len) == 0);
	CHECK(memcmp(buf, data + again_len, have) == 0);
	return 0;
}
