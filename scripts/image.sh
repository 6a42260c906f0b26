#!/bin/sh
# The container image, with podman and nothing from outside (FROM scratch):
#
#   image.sh build VERSION DIR OUT      DIR/subway (static) -> OUT, an OCI archive
#   image.sh push VERSION DIR OUT LAB   OUT -> LAB's registry (server node, :5000)
#
# podman keeps its storage in DIR/storage (vfs: no kernel mounts) and it is
# removed once the archive is written; podman's default network and the
# machine's container storage are never touched.
set -eu
cmd=$1 version=$2 dir=$3 out=$4
die() { echo "image: $*" >&2; exit 1; }
command -v podman >/dev/null || die "podman is not installed (make deps)"
dir=$(cd "$dir" && pwd)
store="$dir/storage"
podman_() {
	podman --storage-driver vfs --root "$store/root" --runroot "$store/run" --tmpdir "$store/tmp" \
		--events-backend none --cgroup-manager cgroupfs "$@"
}
case "$cmd" in
build)
	ctx="$dir/context"
	rm -rf "$ctx" "$store"
	mkdir -p "$ctx"
	cp "$dir/subway" "$ctx/subway"
	trap 'podman_ rmi -a -f >/dev/null 2>&1 || true; rm -rf "$store" "$ctx"' EXIT
	podman_ build -q --network none --build-arg VERSION="$version" -f image/Containerfile \
		-t "localhost/subway:$version" "$ctx" >/dev/null || die "podman build failed"
	rm -f "$out.tmp"
	podman_ save -q --format oci-archive -o "$out.tmp" "localhost/subway:$version" || die "podman save failed"
	mv "$out.tmp" "$out"
	echo "built $out (subway:$version, $(stat -c %s "$out") bytes)"
	;;
push)
	lab=$5
	[ -e "/run/netns/$lab-server" ] || die "lab $lab is not up (no namespace $lab-server)"
	command -v skopeo >/dev/null || die "skopeo is not installed (make deps)"
	ip netns exec "$lab-server" skopeo copy -q --dest-tls-verify=false "oci-archive:$out" \
		"docker://127.0.0.1:5000/subway:$version" || die "push to lab $lab's registry failed"
	echo "pushed subway:$version to lab $lab's registry (the server node's :5000)"
	;;
*)
	die "unknown command $cmd"
	;;
esac
