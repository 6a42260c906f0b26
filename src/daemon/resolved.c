/* systemd-resolved: detection and per-link settings over D-Bus. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include "common/log.h"
#include "common/util.h"
#include "dns/resolv.h"
#include "daemon/resolved.h"

#define RESOLVED_NAME "org.freedesktop.resolve1"
#define RESOLVED_PATH "/org/freedesktop/resolve1"
#define RESOLVED_IFACE "org.freedesktop.resolve1.Manager"
#define RESOLVED_TIMEOUT_US (2 * 1000 * 1000)
#define STUB_1 0x7f000035u /* 127.0.0.53 */
#define STUB_2 0x7f000036u /* 127.0.0.54 */

/* libsystemd is loaded only when systemd-resolved is the resolver here:
 * elsewhere the daemon never maps it (and the six libraries it pulls in,
 * ~0.8 MB of resident memory). */
static struct {
	bool tried, ok;
	int (*open_system)(sd_bus **bus);
	int (*set_method_call_timeout)(sd_bus *bus, uint64_t usec);
	sd_bus *(*flush_close_unref)(sd_bus *bus);
	int (*get_name_creds)(sd_bus *bus, const char *name, uint64_t mask, sd_bus_creds **creds);
	int (*creds_get_pid)(sd_bus_creds *c, pid_t *pid);
	sd_bus_creds *(*creds_unref)(sd_bus_creds *c);
	int (*message_new_method_call)(sd_bus *bus, sd_bus_message **m, const char *dest, const char *path,
				       const char *iface, const char *member);
	int (*message_append)(sd_bus_message *m, const char *types, ...);
	int (*message_append_array)(sd_bus_message *m, char type, const void *ptr, size_t size);
	int (*message_open_container)(sd_bus_message *m, char type, const char *contents);
	int (*message_close_container)(sd_bus_message *m);
	sd_bus_message *(*message_unref)(sd_bus_message *m);
	int (*call)(sd_bus *bus, sd_bus_message *m, uint64_t usec, sd_bus_error *e, sd_bus_message **reply);
	int (*call_method)(sd_bus *bus, const char *dest, const char *path, const char *iface, const char *member,
			   sd_bus_error *e, sd_bus_message **reply, const char *types, ...);
	void (*error_free)(sd_bus_error *e);
} sd;

static bool sd_load(void)
{
	void *h;

	if (sd.tried)
		return sd.ok;
	sd.tried = true;
	if (!(h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL))) {
		log_warn("systemd-resolved: cannot load libsystemd: %s", dlerror());
		return false;
	}
#define SD_SYM(field, name)                                  \
	do {                                                 \
		*(void **)&sd.field = dlsym(h, name);        \
		if (!sd.field) {                             \
			log_warn("libsystemd lacks %s", name); \
			return false;                        \
		}                                            \
	} while (0)
	SD_SYM(open_system, "sd_bus_open_system");
	SD_SYM(set_method_call_timeout, "sd_bus_set_method_call_timeout");
	SD_SYM(flush_close_unref, "sd_bus_flush_close_unref");
	SD_SYM(get_name_creds, "sd_bus_get_name_creds");
	SD_SYM(creds_get_pid, "sd_bus_creds_get_pid");
	SD_SYM(creds_unref, "sd_bus_creds_unref");
	SD_SYM(message_new_method_call, "sd_bus_message_new_method_call");
	SD_SYM(message_append, "sd_bus_message_append");
	SD_SYM(message_append_array, "sd_bus_message_append_array");
	SD_SYM(message_open_container, "sd_bus_message_open_container");
	SD_SYM(message_close_container, "sd_bus_message_close_container");
	SD_SYM(message_unref, "sd_bus_message_unref");
	SD_SYM(call, "sd_bus_call");
	SD_SYM(call_method, "sd_bus_call_method");
	SD_SYM(error_free, "sd_bus_error_free");
#undef SD_SYM
	sd.ok = true;
	return true;
}

/* Frees what a bus call left; nothing was made without the library. */
static void bus_done(sd_bus *bus, sd_bus_error *e)
{
	if (!sd.ok)
		return;
	if (e)
		sd.error_free(e);
	sd.flush_close_unref(bus);
}

static int bus_open(sd_bus **bus)
{
	int r;

	if (!sd_load())
		return -ENOPKG;
	r = sd.open_system(bus);
	if (r >= 0)
		sd.set_method_call_timeout(*bus, RESOLVED_TIMEOUT_US);
	return r;
}

/* Another process's /proc/PID/ns needs ptrace access (CAP_SYS_PTRACE
 * for another uid or more capabilities), which the daemon drops at start
 * (priv.c): resolved_prime() looks while it still may, and the verdict
 * stands for that pid.  A resolved seen only later cannot be checked: it
 * is taken to be ours (its stub is this namespace's resolver). */
static pid_t seen_pid;
static bool seen_same;

static bool same_netns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	if (pid && pid == seen_pid)
		return seen_same;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &a) < 0) {
		if (errno != EACCES && errno != EPERM)
			return false;
		log_info("cannot see the network namespace of systemd-resolved (pid %d) without "
			 "privileges; taking it to be this one", (int)pid);
		return true;
	}
	seen_pid = pid;
	seen_same = stat("/proc/self/ns/net", &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	return seen_same;
}

void resolved_prime(void)
{
	char why[256];

	resolved_detect(why, sizeof(why));
}

int resolved_detect(char *why, size_t size)
{
	char buf[4096];
	struct resolv_conf rc;
	sd_bus *bus = NULL;
	sd_bus_creds *creds = NULL;
	pid_t pid = 0;
	bool stub = false;
	ssize_t n = file_read_small(RESOLV_PATH, buf, sizeof(buf));
	int r;

	if (n < 0)
		return 0;
	resolv_conf_parse(buf, (size_t)n, &rc);
	for (int i = 0; i < rc.n_ns; i++)
		stub |= rc.ns[i] == STUB_1 || rc.ns[i] == STUB_2;
	if (!stub)
		return 0; /* resolved is not the resolver here, whatever runs */
	if ((r = bus_open(&bus)) < 0 ||
	    (r = sd.get_name_creds(bus, RESOLVED_NAME, SD_BUS_CREDS_PID, &creds)) < 0 ||
	    (r = sd.creds_get_pid(creds, &pid)) < 0) {
		snprintf(why, size, "%s names systemd-resolved's stub, but %s is not on the system bus: %s",
			 RESOLV_PATH, RESOLVED_NAME, strerror(-r));
		r = 0;
	} else if (!same_netns(pid)) {
		snprintf(why, size, "systemd-resolved runs in another network namespace than subway");
		r = 0;
	} else {
		r = 1;
	}
	if (sd.ok)
		sd.creds_unref(creds);
	bus_done(bus, NULL);
	return r;
}

/* A call to a per-link method of resolved, its first argument the link. */
static int link_call_new(sd_bus *bus, const char *member, int ifindex, sd_bus_message **m)
{
	int r = sd.message_new_method_call(bus, m, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, member);

	return r < 0 ? r : sd.message_append(*m, "i", ifindex);
}

/* Sends m if building it went well (r >= 0); frees it and the reply. */
static int link_call_send(sd_bus *bus, sd_bus_message *m, int r, sd_bus_error *e)
{
	sd_bus_message *reply = NULL;

	if (r >= 0)
		r = sd.call(bus, m, 0, e, &reply);
	sd.message_unref(m);
	sd.message_unref(reply);
	return r;
}

static int call_dns(sd_bus *bus, int ifindex, uint32_t server, sd_bus_error *e)
{
	sd_bus_message *m = NULL;
	uint8_t a[4] = { (uint8_t)(server >> 24), (uint8_t)(server >> 16), (uint8_t)(server >> 8), (uint8_t)server };
	int r;

	if ((r = link_call_new(bus, "SetLinkDNS", ifindex, &m)) >= 0 &&
	    (r = sd.message_open_container(m, 'a', "(iay)")) >= 0 &&
	    (r = sd.message_open_container(m, 'r', "iay")) >= 0 && (r = sd.message_append(m, "i", AF_INET)) >= 0 &&
	    (r = sd.message_append_array(m, 'y', a, sizeof(a))) >= 0 && (r = sd.message_close_container(m)) >= 0)
		r = sd.message_close_container(m);
	return link_call_send(bus, m, r, e);
}

static int call_domains(sd_bus *bus, int ifindex, const struct resolved_domain *doms, int n, sd_bus_error *e)
{
	sd_bus_message *m = NULL;
	int r = link_call_new(bus, "SetLinkDomains", ifindex, &m);

	if (r >= 0)
		r = sd.message_open_container(m, 'a', "(sb)");
	for (int i = 0; r >= 0 && i < n; i++)
		r = sd.message_append(m, "(sb)", doms[i].name, (int)doms[i].routing_only);
	if (r >= 0)
		r = sd.message_close_container(m);
	return link_call_send(bus, m, r, e);
}

int resolved_plug(int ifindex, uint32_t server, const struct resolved_domain *doms, int n, char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	int r;

	if ((r = bus_open(&bus)) < 0) {
		snprintf(err, errlen, "cannot reach the system bus: %s", strerror(-r));
		return r;
	}
	if ((r = call_dns(bus, ifindex, server, &e)) < 0 || (r = call_domains(bus, ifindex, doms, n, &e)) < 0) {
		snprintf(err, errlen, "systemd-resolved refused the link's DNS settings: %s",
			 e.message ? e.message : strerror(-r));
		goto out;
	}
	/* Only our domains come here, never every name (resolved >= 240). */
	r = sd.call_method(bus, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, "SetLinkDefaultRoute", &e, NULL,
			       "ib", ifindex, 0);
	if (r < 0)
		log_warn("SetLinkDefaultRoute: %s (an older systemd-resolved?)", e.message ? e.message : strerror(-r));
	r = 0;
out:
	bus_done(bus, &e);
	return r;
}

void resolved_unplug(int ifindex)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;

	if (bus_open(&bus) >= 0 &&
	    sd.call_method(bus, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, "RevertLink", &e, NULL, "i",
			       ifindex) < 0)
		log_debug("RevertLink: %s", e.message ? e.message : "failed");
	bus_done(bus, &e);
}
