/* The lab's internals shared between its files (not a public API).
 *
 *   lab.c     CLI: argument parsing, help, dispatch, exec
 *   up.c      up and down: the order of things, cleanup after failure
 *   plan.c    the address plan (pure tables)
 *   render.c  config texts from the plan (pure)
 *   build.c   namespaces, links, sysctls, nftables, resolv.conf
 *   procs.c   servers: start, wait until they answer
 *   kubelet.c pods' containers from the manifests (kubelet.h, podspec.h)
 *   workload.c the workloads the lab holds, lab inject (workload.h)
 *   netns.c   sockets inside a namespace, killing what runs in one
 *   state.c   /run/subway-lab/<lab>: lock, records, pid files
 *   secrets.c the token files and the manager's TLS key and certificate
 *   big.c     the /big file and its sha256
 *   status.c  `lab status`, human and JSON
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lab/plan.h"

struct lab {
	char name[LAB_NAME_MAX + 1];
	enum lab_topo topo;
	struct lab_net net;
	char dir[64]; /* LAB_STATE_ROOT "/<name>" */
	int lock_fd;  /* -1 when not held */
	bool no_manager; /* up --no-manager */
	bool insecure;   /* up --insecure: the manager without TLS */
	int laptops;     /* up --laptops: 1 or 2 */
	const char *install; /* up --install DIR: that `subway install`'s manifests */
};


/* state.c */
/* Also builds net; laptops 0: as the lab's state records (else 1). */
int lab_init(struct lab *lab, const char *name, enum lab_topo topo, int laptops);
int lab_path(const struct lab *lab, char *buf, size_t size, const char *rel);
void lab_nsname(const struct lab *lab, int ns, char buf[LAB_NS_MAX]);
int lab_lock(struct lab *lab, int wait_ms);  /* 0, -EBUSY */
void lab_unlock(struct lab *lab, bool remove_file);
int lab_state_topology(const char *name, enum lab_topo *out); /* 0, -ENOENT, -EINVAL */
bool lab_state_exists(const char *name);
bool lab_is_ready(const struct lab *lab);
int lab_state_create(struct lab *lab);
int lab_state_mark_ready(struct lab *lab, double seconds);
int lab_state_ready_info(const struct lab *lab, char *buf, size_t size);
int lab_record_namespaces(struct lab *lab);
/* Another lab's record names this namespace (a lab "a-udp" owns
 * "a-udp-echo-0", which lab "a" would call its udp-echo-0). */
bool lab_ns_claimed_elsewhere(const char *lab, const char *nsname);
int lab_pid_write(const struct lab *lab, const char *proc, pid_t pid);
pid_t lab_pid_read(const struct lab *lab, const char *proc); /* 0 if none */
int lab_manager_endpoint(const struct lab *lab, char *buf, size_t size);
int rm_rf(const char *path); /* 0 or -errno; a missing path is fine */

/* secrets.c: `subway install` into install/, and the laptop's token file */
int lab_secrets_write(const struct lab *lab);

/* netns.c */
bool netns_exists(const char *name);
int netns_socket(const char *name, int domain, int type); /* fd or -errno */
bool netns_has_addr(const char *name, const char *ifname, uint32_t addr);
bool netns_listens(const char *name, enum lab_proto proto, uint16_t port);
/* A sysctl's value ("net.ipv4.ip_forward") as the namespace has it; 0 or -errno. */
int netns_sysctl(const char *name, const char *key, char *out, size_t size);
/* SIGTERM, then SIGKILL, every process in these namespaces; waits until
 * they are gone (bounded).  Returns how many were signalled. */
int netns_kill_all(char names[][LAB_NS_MAX], int n);
/* Signals (sig 0: only counts) every process but this one that match(pid,
 * arg) picks; returns how many it picked. */
int proc_each(bool (*match)(pid_t pid, void *arg), void *arg, int sig);

/* build.c */
int build_namespaces(struct lab *lab);
int build_links(struct lab *lab);
int build_sysctls(struct lab *lab);
int build_nft(struct lab *lab);
int build_resolv_confs(struct lab *lab);
int build_delete_namespaces(char names[][LAB_NS_MAX], int n);

/* procs.c */
enum lab_proc_kind { PROC_INTERNET_DNS, PROC_INTERNET_WEB, PROC_FORWARDER, PROC_SLIRP, PROC_POD, PROC_REGISTRY,
		     PROC_KUBELET };
struct lab_proc {
	char name[24];       /* pid and log file name */
	char ns_suffix[16];
	enum lab_proc_kind kind;
	int index;           /* node (slirp), pod, or laptop (forwarder) */
	const char *what;    /* for status */
};
#define LAB_PROCS_MAX 20
int procs_plan(const struct lab *lab, struct lab_proc *out, int max);
int procs_start(struct lab *lab);
/* One server (again): its pid, 0 when something else starts it (the
 * manager's pod, the kubelet: kubelet.h), or -errno. */
pid_t proc_start(struct lab *lab, const struct lab_proc *p);
/* cmd in namespace <lab>-<p->ns_suffix>, detached, its pid recorded. */
pid_t lab_proc_spawn(struct lab *lab, const struct lab_proc *p, const char *const cmd[]);
/* Waits (bounded) until p's server answers; 0 or -errno (logged). */
int procs_wait_ready(struct lab *lab, const struct lab_proc *p, pid_t pid);
void procs_log_tail(const struct lab *lab, const char *proc);

/* big.c: writes path (LAB_BIG_SIZE bytes of fixed content) unless it is
 * there already, and its sha256 in lowercase hex. */
int big_ensure(const char *path, char sha_hex[65]);

/* status.c: exit code 0 if up, 1 otherwise. */
int lab_status(struct lab *lab, bool json);
int lab_list(void);

/* up.c */
int lab_up(struct lab *lab);
int lab_down(struct lab *lab);
