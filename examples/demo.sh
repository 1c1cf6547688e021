#!/usr/bin/env bash
# hoist end to end, offline: make a busybox base image locally, build examples/hello on it
# with real runc and overlayfs, export an OCI tarball, and check it from the outside with
# skopeo and umoci. Needs root and the Debian packages listed in README.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${DEMO_DIR:-$(mktemp -d /tmp/hoist-demo.XXXXXX)}"
mkdir -p "$work"
say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (hoist drives runc and mounts overlayfs)"
for tool in busybox umoci skopeo runc; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install runc skopeo umoci busybox-static"
done

say "building hoist"
if [ -z "${HOIST:-}" ]; then
    (cd "$repo" && cargo build --bin hoist)
    HOIST="${CARGO_TARGET_DIR:-$repo/target}/debug/hoist"
fi
[ -x "$HOIST" ] || die "no hoist binary at $HOIST"

say "making a busybox base image as an OCI layout in $work/busybox"
base="$work/busybox"
rm -rf "$base" "$work/base-bundle"
umoci init --layout "$base"
umoci new --image "$base:latest"
umoci unpack --image "$base:latest" "$work/base-bundle"
rootfs="$work/base-bundle/rootfs"
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/app,tmp,var/tmp,proc,sys,dev}
chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
chmod 700 "$rootfs/root"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
busybox --list-full | while read -r applet; do
    case "$applet" in */*) [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet" ;; esac
done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
chown 1000:1000 "$rootfs/home/app"
umoci repack --image "$base:latest" "$work/base-bundle"
umoci config --image "$base:latest" --config.cmd sh \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
skopeo inspect "oci:$base:latest" | grep -E '"(Digest|Architecture|Os)"'

say "hoist build examples/hello (FROM busybox = the local layout, no registry, no network)"
out="$work/hello.tar"
rm -f "$out"
HOIST_STATE_DIR="$work/state" "$HOIST" build "$repo/examples/hello" \
    --build-context "busybox=oci-layout://$base:latest" \
    --build-arg GREETING=hello \
    -t hello:latest \
    --output "type=oci,dest=$out" \
    --progress plain
[ -s "$out" ] || die "hoist wrote no image to $out (is the engine wired in yet? see README.md, Status)"

say "checking $out from the outside"
skopeo inspect "oci-archive:$out" | grep -E '"(Digest|Architecture|Os)"'
skopeo inspect --config "oci-archive:$out" | grep -q '"/app/greet.sh"' || die "image CMD is not /app/greet.sh"
mkdir -p "$work/hello-layout"
tar -xf "$out" -C "$work/hello-layout"
tag="$(sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' "$work/hello-layout/index.json")"
tag="${tag##*:}"
rm -rf "$work/hello-bundle"
umoci unpack --image "$work/hello-layout:${tag:-latest}" "$work/hello-bundle"
got="$(chroot "$work/hello-bundle/rootfs" /app/greet.sh)"
[ "$got" = "hello from hoist" ] || die "greeting is '$got', want 'hello from hoist'"
echo "the image says: $got"
say "demo OK (work dir: $work)"
