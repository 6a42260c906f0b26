#!/bin/sh
# make demo: brings up the lab "subway" (host-only; reused if it is up) and
# shows, in plain words, what it built and what answers.  Leaves it up.
# Later features add their own sections below the lab's.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
SUBWAY=${SUBWAY:-$root/build/subway}
LAB=${LAB:-subway}

# How to call the binary in the hints we print.
case $SUBWAY in "$root/build/subway") sw=build/subway ;; *) sw=$SUBWAY ;; esac
[ "$LAB" = subway ] && name_opt="" || name_opt=" --name $LAB"

say() { printf '\n%s\n' "$*"; }
# show NS CMD...: prints the command as one would type it, runs it in the
# namespace $LAB-NS ("-" for here), and indents its output.
show() {
	ns=$1; shift
	if [ "$ns" = - ]; then
		printf '  $ %s\n' "$*"
		"$@" 2>&1 | sed 's/^/    /' || true
	else
		printf '  $ ip netns exec %s %s\n' "$LAB-$ns" "$*"
		ip netns exec "$LAB-$ns" "$@" 2>&1 | sed 's/^/    /' || true
	fi
}
web_x6() {
	for i in 1 2 3 4 5 6; do ip netns exec "$LAB-$1" curl -s --max-time 3 "$2"; done | tr '\n' ' '
	echo
}

if [ "$(id -u)" != 0 ]; then
	echo "demo: needs root (the lab is made of network namespaces): sudo make demo" >&2
	exit 1
fi

# ---- the lab ----
if "$SUBWAY" lab status --name "$LAB" >/dev/null 2>&1; then
	echo "The lab '$LAB' is already up: reusing it."
else
	"$SUBWAY" lab up --name "$LAB" || { "$SUBWAY" lab down --name "$LAB" && "$SUBWAY" lab up --name "$LAB"; }
fi

say "What was built: an emulated k3s cluster made of network namespaces, with the laptop as a
namespace too ($LAB-laptop), so this machine's own network is untouched:"
"$SUBWAY" lab status --name "$LAB" | sed -n '1,/^pods/p' | sed '$d' | sed 's/^/  /'

say "1. The service 'web' answers on its ClusterIP 10.43.0.20; kube-proxy rules (nftables DNAT)
   spread requests over its two replicas, web-0 on agent1 and web-1 on agent2.
   Six requests from pod echo-0, then six from the node 'server':"
printf '  pod echo-0:  '; web_x6 echo-0 http://10.43.0.20/
printf '  node server: '; web_x6 server http://10.43.0.20/

say "2. Cluster DNS (dnsmasq in kube-dns-0, service 10.43.0.10) answers for cluster.local;
   other names go to the node's upstream, here the laptop's DNS forwarder on 192.168.56.1:"
show echo-0 dig +short web.default.svc.cluster.local
show echo-0 dig +short SRV _http._tcp.web.default.svc.cluster.local
show echo-0 curl -s --max-time 3 http://web/
show echo-0 dig +short example.com

say "3. TCP echo (it honours half-close) and UDP echo, by service name, from pod web-1:"
printf '  TCP echo.default:7     -> '
echo "hello over TCP" | ip netns exec "$LAB-web-1" socat -t 5 - TCP:echo.default.svc.cluster.local:7
printf '  UDP udp-echo.default:7 -> '
echo "hello over UDP" | ip netns exec "$LAB-web-1" socat -T 2 - UDP:udp-echo.default.svc.cluster.local:7

say "4. From the laptop, the nodes answer on node ports (web on 30080; the subway manager on 30443):"
show - "$sw" lab exec$name_opt -- curl -s --max-time 3 http://192.168.56.11:30080/
printf '  manager: '
"$SUBWAY" lab status --name "$LAB" | sed -n 's/^manager *//p'

say "5. Why this topology matters: a ClusterIP that no service owns has no rule, so a node sends
   it along its default route, which is the laptop (192.168.56.1):"
printf '  $ ip netns exec %s ip route get 10.43.250.250\n    ' "$LAB-server"
ip netns exec "$LAB-server" ip route get 10.43.250.250 | head -n 1
echo "  Once subway routes 10.43.0.0/16 into the cluster from the laptop, that is a loop."

# ---- subway connect (the laptop reaches the cluster's networks) ----
say "6. subway connect, in the laptop namespace: the daemon creates a TUN device, routes the pod
   and service CIDRs through it, and hands each connection to the manager in the cluster:"
show - "$sw" lab exec$name_opt -- "$sw" connect --lab "$LAB"
say "   Now the laptop reaches ClusterIPs and pod IPs as a node would (the kernel's own TCP,
   through a hairpin NAT in the TUN):"
printf '  $ curl http://10.43.0.20/ (x6)   '
for i in 1 2 3 4 5 6; do "$SUBWAY" lab exec --name "$LAB" -- curl -s --max-time 3 http://10.43.0.20/; done | tr '\n' ' '
echo
web1=10.42.2.2 # pod web-1, on node agent2 (docs/lab.md)
show - "$sw" lab exec$name_opt -- curl -s --max-time 3 "http://$web1/"
show - "$sw" lab exec$name_opt -- "$sw" status

say "7. Cluster DNS on the laptop: subway's DNS server on the VIF (198.18.0.1) answers the
   cluster's names through the tunnel, from the cluster's DNS, and passes every other
   name to the laptop's own resolver.  While connected, resolv.conf names it:"
show laptop cat /etc/resolv.conf
show laptop curl -s --max-time 3 http://web.default/
show laptop dig +short web.default.svc.cluster.local
show laptop getent hosts web.default
show laptop dig +short SRV _http._tcp.web
show laptop dig +short example.com
# ---- the loop guard (docs/vm-networking.md) ----
say "8. The loop of step 5, now that subway is connected: a ClusterIP no service owns.  The
   manager dials it, the node sends it to its default route (this laptop), and the laptop
   would forward it into the VIF again, and again.  subway's loop guard recognises the
   connection coming back (its source is a node, and it carries the manager's mark) and
   refuses it at once, so curl fails right away with \"connection refused\":"
printf '  $ %s lab exec%s -- curl -v --max-time 5 http://10.43.250.250/\n' "$sw" "$name_opt"
t0=$(date +%s%N)
"$SUBWAY" lab exec --name "$LAB" -- curl -sv --max-time 5 http://10.43.250.250/ 2>&1 | grep -E 'refused|Failed' | sed 's/^/    /' || true
echo "    (failed after $(( ($(date +%s%N) - t0) / 1000000 )) ms, subway lab exec included)"
show - "$sw" lab exec$name_opt -- "$sw" status
say "   The refused loops are counted under 'loop guard' (status --json: loops_blocked), and the
   daemon logged one line about the source.  subway doctor names the setup and the fix:"
show - "$sw" lab exec$name_opt -- "$sw" doctor
# ---- intercepts (docs/intercepts.md) ----
say "9. Intercepts: the cluster's traffic to the laptop.  'lab inject' applies the patch
   'subway inject web' prints (the agent's sidecar) to the Deployment the lab holds and
   restarts its pods; a small HTTP server runs on the laptop's 127.0.0.1:8080:"
show - "$sw" lab inject$name_opt web
srvlog=$(mktemp)
ip netns exec "$LAB-laptop" /usr/bin/python3 "$root/tests/integration/icept_http.py" serve 8080 laptop "$srvlog" \
	</dev/null >/dev/null 2>&1 &
srv=$!
i=0
while [ $i -lt 50 ] && ! ip netns exec "$LAB-laptop" ss -Htln 'sport = :8080' | grep -q .; do sleep 0.1; i=$((i + 1)); done
i=0
while [ $i -lt 100 ] && ! "$SUBWAY" lab exec --name "$LAB" -- "$SUBWAY" list 2>/dev/null | grep -q 'web-1 (ready)'; do
	sleep 0.1; i=$((i + 1))
done
show - "$sw" lab exec$name_opt -- "$sw" intercept web --port 8080 --http-header x-dev=me
say "   Requests from pod 'client' with that header reach the laptop; the others, the pods:"
printf '  with x-dev: me:  '
for i in 1 2 3; do ip netns exec "$LAB-client" curl -s --max-time 3 -H 'x-dev: me' http://web/ | tr -d '\n'; printf '; '; done
printf '\n  without:         '
for i in 1 2 3; do ip netns exec "$LAB-client" curl -s --max-time 3 http://web/ | tr -d '\n'; printf '; '; done
echo
show - "$sw" lab exec$name_opt -- "$sw" list
show - "$sw" lab exec$name_opt -- "$sw" leave web
kill $srv 2>/dev/null || true
rm -f "$srvlog"

echo "  Disconnect with: $sw lab exec$name_opt -- $sw quit   (resolv.conf comes back byte for byte)"

say "The lab stays up. Look around (docs/lab.md draws it):
  $sw lab status$name_opt          everything, with addresses and the sha256 of /big
  $sw lab exec$name_opt -- sh      a shell on the laptop
  ip netns exec $LAB-web-0 sh      a shell in a pod ($LAB-agent1: on a node)
Take it down with:
  $sw lab down$name_opt"
