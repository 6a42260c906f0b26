/* libFuzzer target for streams on a trunk (src/net/mux.c): the bytes a
 * peer sends on a trunk, after authentication.  Input: one byte of mode
 * (bit 0: the daemon's side, which opens three streams first, else the
 * manager's, which accepts opens; bits 1-3: how the input is cut into
 * writes), then the peer's bytes.  Streams are bound to socket pairs whose
 * far ends read what arrives and send a little back.  Whatever the peer
 * sends, the mux must not crash, leak, or touch a stream it has ended. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/loop.h"
#include "net/mux.h"
#include "fuzz.h"


#define SLOTS 6

struct slot {
	struct mux_stream st;
	int fd[2]; /* fd[0] to the mux, fd[1] the app's end */
	bool used, bound;
};

static struct loop *L;
static struct mux *M;
static struct slot S[SLOTS];
static struct loop_timer T;

static void slot_close(struct slot *s)
{
	for (int i = 0; i < 2; i++)
		if (s->fd[i] >= 0)
			close(s->fd[i]);
	s->fd[0] = s->fd[1] = -1;
	s->used = s->bound = false;
}

static struct slot *slot_new(void)
{
	for (int i = 0; i < SLOTS; i++)
		if (!S[i].used) {
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, S[i].fd) < 0)
				return NULL;
			S[i].used = true;
			return &S[i];
		}
	return NULL;
}

static void on_open(struct mux *mx, uint32_t id, const struct msg_dial *m, void *arg)
{
	struct slot *s = slot_new();

	(void)m;
	(void)arg;
	if (!s) {
		mux_refuse(mx, id, DIAL_LIMIT);
		return;
	}
	CHECK(mux_attach(mx, &s->st, id, s) == 0);
	if (mux_result(&s->st, DIAL_OK) < 0 || mux_bind(&s->st, s->fd[0]) < 0) {
		mux_reset(&s->st);
		slot_close(s);
		return;
	}
	s->bound = true;
}

static void on_result(struct mux_stream *st, uint8_t status)
{
	struct slot *s = st->owner;

	CHECK(s->used && !s->bound);
	if (status != DIAL_OK) {
		CHECK(!mux_attached(st));
		slot_close(s);
		return;
	}
	if (mux_bind(st, s->fd[0]) < 0) {
		mux_reset(st);
		slot_close(s);
		return;
	}
	s->bound = true;
}

static void on_done(struct mux_stream *st, int err)
{
	struct slot *s = st->owner;

	(void)err;
	CHECK(s->used && !mux_attached(st));
	slot_close(s);
}

static void on_down(struct mux *mx, int err, void *arg)
{
	(void)err;
	(void)arg;
	for (int i = 0; i < SLOTS; i++)
		CHECK(!S[i].used || !mux_attached(&S[i].st));
	mux_free(mx);
	M = NULL;
}

static const struct mux_ops ops_mgr = { .open = on_open, .done = on_done, .down = on_down };
static const struct mux_ops ops_daemon = { .result = on_result, .done = on_done, .down = on_down };

static void stop(struct loop *l, struct loop_timer *t)
{
	(void)t;
	loop_stop(l);
}

/* One pass of the loop: what is readable is handled, kicks and timers run. */
static void step(void)
{
	loop_timer_arm(L, &T, 0, stop, NULL);
	loop_run(L);
}

/* The apps and the peer read what came, and the apps answer a little. */
static void drain(int peer)
{
	uint8_t buf[65536];

	while (read(peer, buf, sizeof(buf)) > 0)
		;
	for (int i = 0; i < SLOTS; i++)
		if (S[i].used) {
			while (read(S[i].fd[1], buf, sizeof(buf)) > 0)
				;
			if (write(S[i].fd[1], "ok", 2) < 0) {
				/* a full buffer or a closed stream: fine */
			}
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t cuts[] = { 9, 13, 64, 512, 4096, 16384, 70000, 1 << 20 };
	struct wire w;
	int t[2];
	size_t cut, off = 1;

	if (size < 1)
		return 0;
	cut = cuts[(data[0] >> 1) & 7];
	for (int i = 0; i < SLOTS; i++)
		S[i] = (struct slot){ .fd = { -1, -1 } };
	CHECK((L = loop_new()) != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, t) == 0);
	CHECK(wire_init(&w, t[0], FRAME_MAX, FRAME_MAX_PAYLOAD) == 0);
	M = mux_new(L, &w, (data[0] & 1) ? MUX_INITIATOR : MUX_ACCEPTOR, (data[0] & 1) ? &ops_daemon : &ops_mgr, NULL);
	CHECK(M != NULL);
	if (data[0] & 1)
		for (int i = 0; i < 3; i++) {
			struct slot *s = slot_new();
			struct msg_dial m = { .addr = 0x0a2a0001, .port = (uint16_t)(80 + i) };
			CHECK(s && mux_open(M, &s->st, &m, s) == 0);
		}
	for (int rounds = 0; M && rounds < 64 && off < size; rounds++) {
		size_t n = size - off < cut ? size - off : cut;
		ssize_t put = write(t[1], data + off, n);
		if (put > 0)
			off += (size_t)put;
		step();
		drain(t[1]);
	}
	for (int i = 0; i < 4 && M; i++) { /* what the last bytes started */
		step();
		drain(t[1]);
	}
	mux_free(M); /* ends what is left: done for each stream */
	M = NULL;
	for (int i = 0; i < SLOTS; i++) {
		CHECK(!S[i].used || !S[i].bound);
		slot_close(&S[i]);
	}
	close(t[1]);
	loop_free(L);
	return 0;
}
