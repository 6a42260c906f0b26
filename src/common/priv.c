/* Dropping privileges, for the daemon and the agent: a bug in a parser
 * of untrusted bytes (the VIF's packets, the manager's frames, a control
 * request, an intercepted HTTP request) cannot use what is gone.
 *
 * Every capability but `keep` goes, from the effective, permitted,
 * inheritable and ambient sets and from the bounding set, and no_new_privs
 * is set, so nothing the process could exec gets more (SECBIT_NOROOT: root
 * is not special on exec either).  Gone: CAP_DAC_OVERRIDE/READ_SEARCH
 * (other users' files), CAP_SYS_ADMIN (mounts, namespaces, bpf),
 * CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_SETUID/SETGID, CAP_NET_RAW,
 * CAP_KILL, CAP_CHOWN, CAP_FOWNER...
 *
 * The daemon (keeps NET_ADMIN for its TUN device, routes and per-link DNS,
 * NET_BIND_SERVICE for port 53 on the VIF) stays uid 0: it restores the
 * root-owned resolv.conf (in place, as the lab's bind mount requires) on
 * quit and after a crash, and removes its socket in /run/subway.  uid 0
 * still owns most system files, so this is a floor, not a sandbox;
 * docs/security.md says what the next step is.
 *
 * The agent (keeps NET_ADMIN for its nftables redirect) runs as uid 0 in
 * its pod, which is how a container gets a capability at all (a non-root
 * one loses what it is given at its execve, and no_new_privs, which
 * allowPrivilegeEscalation: false sets, ignores file capabilities); its
 * container is given NET_ADMIN alone, so the bounding set is that already
 * and uid 0 can do little more than the redirect.  Changing uid would need
 * CAP_SETUID and CAP_SETGID too. */
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/priv.h"

static int priv_last_cap(void)
{
	char buf[16];
	uint64_t v;

	if (file_read_small("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) < 0)
		return CAP_LAST_CAP;
	buf[strcspn(buf, "\n")] = 0;
	return u64_parse(buf, 63, &v) == 0 ? (int)v : CAP_LAST_CAP;
}

static int priv_capget(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &h, d) < 0 ? -errno : 0;
}

static int priv_capset(uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	for (int i = 0; i < 2; i++)
		d[i].effective = d[i].permitted = (uint32_t)(keep >> (32 * i));
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

/* The bounding set and securebits need CAP_SETPCAP: before capset.
 * Without it (a container given only what it keeps) the securebits stay
 * as they are and only what is still in the bounding set is a failure. */
static int priv_bound(uint64_t keep)
{
	int last = priv_last_cap(), ret = 0;

	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED) < 0)
		log_debug("securebits: %s", strerror(errno));
	for (int c = 0; c <= last; c++)
		if (!(keep & (1ull << c)) && prctl(PR_CAPBSET_READ, c) == 1 && prctl(PR_CAPBSET_DROP, c) < 0)
			ret = -errno;
	return ret;
}

int priv_drop(uint64_t want)
{
	struct __user_cap_data_struct d[2];
	uint64_t have, keep;
	int ret;

	if ((ret = priv_capget(d)) < 0)
		return ret;
	have = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	keep = have & want;
	if ((ret = priv_bound(keep)) < 0)
		log_warn("cannot drop the bounding set (no CAP_SETPCAP?): %s", strerror(-ret));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if ((ret = priv_capset(keep)) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("cannot drop capabilities: %s", strerror(ret ? -ret : errno));
		return ret ? ret : -errno;
	}
	if (keep != want)
		log_warn("started without capabilities 0x%llx (it has 0x%llx): what needs them will fail",
			 (unsigned long long)(want & ~keep), (unsigned long long)have);
	log_debug("capabilities now 0x%llx (was 0x%llx)", (unsigned long long)keep, (unsigned long long)have);
	return 0;
}
