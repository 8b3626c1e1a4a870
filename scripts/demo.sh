#!/usr/bin/env bash
# moorage's main job on a fresh machine: install, make a busybox image from
# Debian's busybox-static, and run a real container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

root=${MOORAGE_ROOT:-/var/lib/moorage}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/rootfs/etc/group"
tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 -cf "$work/busybox.tar" .

moorage import --change 'CMD ["/bin/sh"]' "$work/busybox.tar" busybox:latest
moorage images
moorage run --rm --name moorage-demo busybox sh -c 'echo "hello from $(hostname), I am PID $$"; uname -a'
