/* systemd-resolved over D-Bus (sd-bus from libsystemd): the DNS server and
 * its domains set on the VIF link (org.freedesktop.resolve1.Manager
 * SetLinkDNS, SetLinkDomains, SetLinkDefaultRoute), so resolved sends
 * only the cluster's names here, and forgets it all when the link goes.
 * Calls are synchronous with a short timeout: once at connect, once at
 * quit, on a local bus that answers in milliseconds. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct resolved_domain {
	const char *name;
	bool routing_only; /* "~name": routes names here without being a search domain */
};

/* 1 when systemd-resolved is this laptop's resolver: /etc/resolv.conf
 * names its stub (127.0.0.53 or .54) and org.freedesktop.resolve1 runs in
 * this network namespace; else 0, with the reason in why when resolved
 * seemed meant but is not usable. */
int resolved_detect(char *why, size_t size);
/* 0, or -errno with a one-line reason in err. */
int resolved_plug(int ifindex, uint32_t server, const struct resolved_domain *doms, int n, char *err, size_t errlen);
/* Forgets what was set on the link (it goes away with the link anyway). */
void resolved_unplug(int ifindex);
