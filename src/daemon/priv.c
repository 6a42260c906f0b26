/* The daemon's privileges.  It runs as root because it creates a network
 * interface; once its control socket exists it keeps only what the rest of
 * its life needs, so a bug in a parser of the VIF's packets, of the
 * manager's frames or of the control socket's requests cannot use the rest:
 *
 *   CAP_NET_ADMIN         creating the TUN device, its addresses and routes
 *                         (first connect, and again after a reconnect that
 *                         brings other CIDRs), per-link DNS and the
 *                         systemd-resolved settings on the link (resolved
 *                         grants them to a caller with CAP_NET_ADMIN)
 *   CAP_NET_BIND_SERVICE  the DNS server's port 53 on the VIF, bound when
 *                         the VIF comes up, which is after this point
 *
 * Everything else goes, from the effective, permitted, inheritable and
 * ambient sets and from the bounding set, and no_new_privs is set, so
 * nothing it could exec gets more (SECBIT_NOROOT: root is not special on
 * exec either).  Gone: CAP_DAC_OVERRIDE/READ_SEARCH (other users' files),
 * CAP_SYS_ADMIN (mounts, namespaces, bpf), CAP_SYS_PTRACE, CAP_SYS_MODULE,
 * CAP_SETUID/SETGID, CAP_NET_RAW, CAP_KILL, CAP_CHOWN, CAP_FOWNER...
 *
 * It stays uid 0: it restores the root-owned resolv.conf (in place, as the
 * lab's bind mount requires) on quit and after a crash, and removes its
 * socket in /run/subway.  uid 0 still owns most system files, so this is a
 * floor, not a sandbox; docs/security.md says what the next step is. */
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
#include "daemon/priv.h"

#define PRIV_KEEP ((1ull << CAP_NET_ADMIN) | (1ull << CAP_NET_BIND_SERVICE))

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

/* The bounding set and securebits need CAP_SETPCAP: before capset. */
static int priv_bound(uint64_t keep)
{
	int last = priv_last_cap(), ret = 0;

	if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED) < 0)
		ret = -errno;
	for (int c = 0; c <= last; c++)
		if (!(keep & (1ull << c)) && prctl(PR_CAPBSET_DROP, c) < 0 && errno != EINVAL)
			ret = -errno;
	return ret;
}

int priv_drop(void)
{
	struct __user_cap_data_struct d[2];
	uint64_t have, keep;
	int ret;

	if ((ret = priv_capget(d)) < 0)
		return ret;
	have = (uint64_t)d[1].permitted << 32 | d[0].permitted;
	keep = have & PRIV_KEEP;
	if (priv_bound(keep) < 0)
		log_warn("cannot drop the bounding set (no CAP_SETPCAP?): %s", strerror(errno));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if ((ret = priv_capset(keep)) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("cannot drop capabilities: %s", strerror(ret ? -ret : errno));
		return ret ? ret : -errno;
	}
	if (keep != PRIV_KEEP)
		log_warn("started without CAP_NET_ADMIN/CAP_NET_BIND_SERVICE (capabilities 0x%llx): "
			 "connect will fail", (unsigned long long)have);
	log_debug("capabilities now 0x%llx (was 0x%llx)", (unsigned long long)keep, (unsigned long long)have);
	return 0;
}
