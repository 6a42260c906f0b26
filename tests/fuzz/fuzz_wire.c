/* libFuzzer target for the framed connection buffer (src/net/wire.c), the
 * first code to see a peer's bytes.  Input: one byte of mode, then the
 * bytes the peer sends, cut into reads of the sizes the mode picks, with
 * the limits raised after the first frame (as after authentication).
 * Every frame handed out lies inside the buffer, within the limit in
 * force, and re-reads as the same bytes it came as; nothing is buffered
 * beyond rcap; what the peer sent comes out as frames, then a header error
 * or a partial frame, or raw bytes through wire_take_rest. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "net/wire.h"
#include "fuzz.h"


static const size_t chunks[] = { 1, 3, 8, 9, 100, 520, 4096, 60000 };

/* Handles every complete frame; returns bytes consumed, or -1 on a bad header. */
static long drain(struct wire *w, const uint8_t *sent, size_t *seen, bool *grown)
{
	struct frame_hdr h;
	const uint8_t *p;
	long used = 0;
	int r;

	while ((r = wire_next(w, &h, &p)) == 1) {
		CHECK(h.len <= w->max_payload);
		CHECK(p >= w->rbuf + FRAME_HDR_LEN && p + h.len <= w->rbuf + w->rlen);
		CHECK(memcmp(p - FRAME_HDR_LEN, sent + *seen, FRAME_HDR_LEN + h.len) == 0);
		*seen += FRAME_HDR_LEN + h.len;
		used += FRAME_HDR_LEN + (long)h.len;
		wire_consume(w);
		if (!*grown) {
			*grown = true;
			CHECK(wire_set_limits(w, FRAME_MAX, FRAME_MAX_PAYLOAD) == 0);
		}
	}
	CHECK(r == 0 || r == -EBADMSG || r == -EMSGSIZE);
	return r < 0 ? -1 : used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire w;
	size_t seen = 0, fed = 0;
	bool grown = false, bad = false;
	int pfd[2];

	if (size < 1 || size > 200000 || pipe2(pfd, O_NONBLOCK | O_CLOEXEC) < 0)
		return 0;
	CHECK(wire_init(&w, pfd[0], FRAME_HDR_LEN + FRAME_MAX_PAYLOAD_PREAUTH, FRAME_MAX_PAYLOAD_PREAUTH) == 0);
	for (size_t i = 0; fed < size - 1 && !bad; i++) {
		size_t n = MIN(chunks[(data[0] >> (i % 6)) & 7], size - 1 - fed);
		CHECK(write(pfd[1], data + 1 + fed, n) == (ssize_t)n);
		fed += n;
		while (!bad) {
			int r = wire_read(&w);
			CHECK(w.rlen <= w.rcap);
			if (r == -EAGAIN)
				break;
			CHECK(r > 0 || r == -ENOBUFS);
			bad = drain(&w, data + 1, &seen, &grown) < 0;
			CHECK(bad || r != -ENOBUFS || wire_unread(&w) < w.rcap);
		}
	}
	if (!bad) {
		const uint8_t *rest;
		size_t n = wire_take_rest(&w, &rest);
		CHECK(seen + n == size - 1 && (n == 0 || memcmp(rest, data + 1 + seen, n) == 0));
	}
	wire_fini(&w);
	close(pfd[0]);
	close(pfd[1]);
	return 0;
}
