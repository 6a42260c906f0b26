#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_INFO;
static FILE *log_fp;
static char log_prog[32] = "subway";

void log_open(const char *path, const char *prog)
{
	if (prog)
		snprintf(log_prog, sizeof(log_prog), "%s", prog);
	if (!path)
		return;
	FILE *fp = fopen(path, "ae");
	if (fp) {
		setvbuf(fp, NULL, _IOLBF, 0);
		if (log_fp)
			fclose(log_fp);
		log_fp = fp;
	}
}

int log_fd(void)
{
	return log_fp ? fileno(log_fp) : -1;
}

void log_msg(enum log_level lvl, const char *func, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	FILE *fp = log_fp ? log_fp : stderr;
	char ts[32] = "";
	va_list ap;

	if (lvl > log_threshold)
		return;
	if (log_fp) {
		struct timespec now;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		snprintf(ts, sizeof(ts), "%02d:%02d:%02d.%03ld ", tm.tm_hour, tm.tm_min, tm.tm_sec,
			 now.tv_nsec / 1000000);
	}
	/* One write per line: stderr is unbuffered, and a container's log
	 * (or a shared file) would otherwise get the pieces as partial lines,
	 * perhaps between another writer's. */
	char line[2048];
	size_t max = sizeof(line) - 1; /* room for the newline: a long line is cut */
	int n = snprintf(line, max, "%s%s[%d] %s: %s: ", ts, log_prog, (int)getpid(), names[lvl], func), m = 0;
	if (n < 0)
		return;
	if ((size_t)n < max - 1) {
		va_start(ap, fmt);
		m = vsnprintf(line + n, max - (size_t)n, fmt, ap);
		va_end(ap);
	}
	size_t len = (size_t)n + (size_t)(m > 0 ? m : 0);
	if (len > max - 1)
		len = max - 1; /* what vsnprintf or snprintf wrote */
	line[len++] = '\n';
	fwrite(line, 1, len, fp);
}
