#include "common/run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

const char *run_argv_str(char *const argv[], char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; argv[i] && off + 1 < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s", i ? " " : "", argv[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off + 1 >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
	return buf;
}

/* Child side: stdio from the given fds, every other fd closed, then exec. */
static void run_child(char *const argv[], int in_fd, int out_fd, int err_fd)
{
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	close_range(3, ~0u, 0);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int run_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

struct run_io {
	int in_fd, out_fd;
	const char *input;
	size_t in_len, in_off;
	char *out;
	size_t out_size, out_len;
};

/* A child that exits before reading all its input must not kill us with
 * SIGPIPE: block it around the write and take back the one that came. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	static const struct timespec zero;
	sigset_t pipe_set, old;
	ssize_t n;
	int e;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	e = errno;
	if (n < 0 && e == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

/* One poll round: feed stdin, drain stdout.  0 to go on, 1 when done. */
static int run_io_step(struct run_io *io, int timeout_ms)
{
	struct pollfd p[2] = { { .fd = io->out_fd, .events = POLLIN }, { .fd = io->in_fd, .events = POLLOUT } };
	int n = poll(p, io->in_fd >= 0 ? 2 : 1, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ETIMEDOUT;
	if (io->in_fd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t w = write_nosigpipe(io->in_fd, io->input + io->in_off, io->in_len - io->in_off);
		if (w > 0)
			io->in_off += (size_t)w;
		if (w < 0 || io->in_off == io->in_len) {
			close(io->in_fd);
			io->in_fd = -1;
		}
	}
	if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
		char tmp[4096];
		ssize_t r = read(io->out_fd, tmp, sizeof(tmp));
		if (r <= 0)
			return r < 0 && errno == EINTR ? 0 : 1;
		size_t keep = MIN((size_t)r, io->out_size - 1 - io->out_len);
		memcpy(io->out + io->out_len, tmp, keep);
		io->out_len += keep;
	}
	return 0;
}

static int run_wait(pid_t pid, uint64_t deadline)
{
	int status;

	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			return run_status(status);
		if (w < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

/* Forks argv with pipes for stdin and stdout+stderr, then pumps them. */
static int run_pump(char *const argv[], const struct run_opts *o, char *out, size_t out_size)
{
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 };
	uint64_t deadline = now_ms() + (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : RUN_TIMEOUT_MS);
	struct run_io io = { .input = o->input, .in_len = o->input ? strlen(o->input) : 0,
			     .out = out, .out_size = out_size };
	int ret = 0;
	pid_t pid, parent;

	if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		/* Dies with us: an `ip -batch` must not go on building after a kill -9. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		run_child(argv, inp[0], outp[1], o->stderr_fd > 0 ? o->stderr_fd : outp[1]);
	}
	close(inp[0]);
	close(outp[1]);
	inp[0] = outp[1] = -1;
	io.in_fd = inp[1];
	io.out_fd = outp[0];
	fcntl(io.in_fd, F_SETFL, O_NONBLOCK);
	if (!o->input) {
		close(io.in_fd);
		io.in_fd = -1;
	}
	inp[1] = -1;
	while (ret == 0) {
		uint64_t now = now_ms();
		ret = run_io_step(&io, now >= deadline ? 0 : (int)(deadline - now));
	}
	if (io.in_fd >= 0)
		close(io.in_fd);
	out[io.out_len] = 0;
	if (ret == -ETIMEDOUT)
		kill(pid, SIGKILL);
	ret = run_wait(pid, ret == -ETIMEDOUT ? now_ms() : deadline);
out:
	for (int i = 0; i < 2; i++) {
		if (inp[i] >= 0)
			close(inp[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	return ret;
}

int run_argv(char *const argv[], const struct run_opts *opts)
{
	static const struct run_opts none;
	const struct run_opts *o = opts ? opts : &none;
	char own[2048];
	char *out = o->out ? o->out : own;
	size_t out_size = o->out ? o->out_size : sizeof(own);
	int ret;

	if (out_size == 0)
		return -EINVAL;
	ret = run_pump(argv, o, out, out_size);
	if (ret != 0 && !o->quiet) {
		char line[512];
		size_t n = strlen(out);
		while (n > 0 && out[n - 1] == '\n')
			out[--n] = 0;
		run_argv_str(argv, line, sizeof(line));
		if (ret < 0)
			log_err("'%s' failed: %s %s", line, strerror(-ret), out);
		else
			log_err("'%s' exited with %d: %s", line, ret, n ? out : "(no output)");
	}
	return ret;
}

int run_cmd(char *const argv[])
{
	return run_argv(argv, NULL);
}

int run_cmd_input(char *const argv[], const char *input)
{
	struct run_opts o = { .input = input };
	return run_argv(argv, &o);
}

pid_t run_spawn(char *const argv[], const char *log_path)
{
	int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid = -1;

	if (in_fd < 0 || log_fd < 0) {
		pid = -errno;
		log_err("cannot open %s: %s", in_fd < 0 ? "/dev/null" : log_path, strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		pid = -errno;
		log_err("fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		setsid();
		run_child(argv, in_fd, log_fd, log_fd);
	}
out:
	if (in_fd >= 0)
		close(in_fd);
	if (log_fd >= 0)
		close(log_fd);
	return pid;
}
