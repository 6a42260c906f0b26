/* systemd-resolved: detection and per-link settings over D-Bus. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/resolv.h"
#include "daemon/resolved.h"

#define RESOLVED_NAME "org.freedesktop.resolve1"
#define RESOLVED_PATH "/org/freedesktop/resolve1"
#define RESOLVED_IFACE "org.freedesktop.resolve1.Manager"
#define RESOLVED_TIMEOUT_US (2 * 1000 * 1000)
#define STUB_1 0x7f000035u /* 127.0.0.53 */
#define STUB_2 0x7f000036u /* 127.0.0.54 */

static int bus_open(sd_bus **bus)
{
	int r = sd_bus_open_system(bus);

	if (r >= 0)
		sd_bus_set_method_call_timeout(*bus, RESOLVED_TIMEOUT_US);
	return r;
}

static bool same_netns(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return stat(path, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
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
	    (r = sd_bus_get_name_creds(bus, RESOLVED_NAME, SD_BUS_CREDS_PID, &creds)) < 0 ||
	    (r = sd_bus_creds_get_pid(creds, &pid)) < 0) {
		snprintf(why, size, "%s names systemd-resolved's stub, but %s is not on the system bus: %s",
			 RESOLV_PATH, RESOLVED_NAME, strerror(-r));
		r = 0;
	} else if (!same_netns(pid)) {
		snprintf(why, size, "systemd-resolved runs in another network namespace than subway");
		r = 0;
	} else {
		r = 1;
	}
	sd_bus_creds_unref(creds);
	sd_bus_flush_close_unref(bus);
	return r;
}

static int call_dns(sd_bus *bus, int ifindex, uint32_t server, sd_bus_error *e)
{
	sd_bus_message *m = NULL, *reply = NULL;
	uint8_t a[4] = { (uint8_t)(server >> 24), (uint8_t)(server >> 16), (uint8_t)(server >> 8), (uint8_t)server };
	int r;

	if ((r = sd_bus_message_new_method_call(bus, &m, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE,
						"SetLinkDNS")) < 0 ||
	    (r = sd_bus_message_append(m, "i", ifindex)) < 0 ||
	    (r = sd_bus_message_open_container(m, 'a', "(iay)")) < 0 ||
	    (r = sd_bus_message_open_container(m, 'r', "iay")) < 0 ||
	    (r = sd_bus_message_append(m, "i", AF_INET)) < 0 ||
	    (r = sd_bus_message_append_array(m, 'y', a, sizeof(a))) < 0 ||
	    (r = sd_bus_message_close_container(m)) < 0 || (r = sd_bus_message_close_container(m)) < 0)
		goto out;
	r = sd_bus_call(bus, m, 0, e, &reply);
out:
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r;
}

static int call_domains(sd_bus *bus, int ifindex, const struct resolved_domain *doms, int n, sd_bus_error *e)
{
	sd_bus_message *m = NULL, *reply = NULL;
	int r;

	if ((r = sd_bus_message_new_method_call(bus, &m, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE,
						"SetLinkDomains")) < 0 ||
	    (r = sd_bus_message_append(m, "i", ifindex)) < 0 ||
	    (r = sd_bus_message_open_container(m, 'a', "(sb)")) < 0)
		goto out;
	for (int i = 0; i < n; i++)
		if ((r = sd_bus_message_append(m, "(sb)", doms[i].name, (int)doms[i].routing_only)) < 0)
			goto out;
	if ((r = sd_bus_message_close_container(m)) < 0)
		goto out;
	r = sd_bus_call(bus, m, 0, e, &reply);
out:
	sd_bus_message_unref(m);
	sd_bus_message_unref(reply);
	return r;
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
	r = sd_bus_call_method(bus, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, "SetLinkDefaultRoute", &e, NULL,
			       "ib", ifindex, 0);
	if (r < 0)
		log_warn("SetLinkDefaultRoute: %s (an older systemd-resolved?)", e.message ? e.message : strerror(-r));
	r = 0;
out:
	sd_bus_error_free(&e);
	sd_bus_flush_close_unref(bus);
	return r;
}

void resolved_unplug(int ifindex)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;

	if (bus_open(&bus) >= 0 &&
	    sd_bus_call_method(bus, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, "RevertLink", &e, NULL, "i",
			       ifindex) < 0)
		log_debug("RevertLink: %s", e.message ? e.message : "failed");
	sd_bus_error_free(&e);
	sd_bus_flush_close_unref(bus);
}
