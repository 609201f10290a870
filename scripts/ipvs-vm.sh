#!/usr/bin/env bash
# Run a command inside a throwaway qemu VM that boots Debian's kernel (linux-image-amd64, which has IPVS) with
# this machine's root filesystem shared read-only over virtio-9p, tmpfs on the writable paths, and the IPVS
# modules loaded -- so svcnet's ipvs mode can be verified for real where the host kernel has no IPVS.
#
#   scripts/ipvs-vm.sh [--check] [--] COMMAND [ARGS...]
#
# The command runs as root (PID 1's child) in the current directory, without network to the outside; its exit
# status is this script's. --check only reports whether the VM can run here (exit 0) or why not (exit 3).
# Missing Debian packages (qemu-system-x86, linux-image-amd64, ipvsadm, ipset, busybox) are installed with apt
# unless SVCNET_VM_NO_INSTALL=1; running it again installs nothing. KVM is used when /dev/kvm opens, TCG
# otherwise. Environment: SVCNET_VM_TIMEOUT (seconds, default 300), SVCNET_VM_MEMORY (MiB, default 1024).
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
CACHE=/var/cache/svcnet-ipvs-vm
PACKAGES=(qemu-system-x86 linux-image-amd64 ipvsadm ipset busybox)
MODULES_9P=(virtio_pci 9pnet_virtio 9p)
IPVS_MODULES=(ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq dummy veth
              ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_bitmap_port xt_set
              nf_conntrack br_netfilter)  # br_netfilter: replies between pods on one bridge pass IPVS, as on nodes

die() { echo "ipvs-vm: $*" >&2; exit 3; }

# --- inside the VM: PID 1 after switch_root -------------------------------------------------------------------
guest() {
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
    mount -t proc proc /proc
    mount -t sysfs sys /sys
    mount -t devtmpfs dev /dev 2>/dev/null || true
    mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
    # the checkout stays visible even where it lives under one of the tmpfs paths (a CI clone in /tmp)
    local project
    project=$(dirname "$(dirname "$SELF")")
    mkdir -p /dev/shm/project && mount --bind "$project" /dev/shm/project
    for dir in /run /tmp /var/tmp /var/lib/svcnet /var/log; do  # not /root: python may live there (pyenv)
        [ -d "$dir" ] || continue
        mount -t tmpfs -o mode=1777 tmpfs "$dir"
        case "$project/" in "$dir"/*) mkdir -p "$project" && mount --bind /dev/shm/project "$project" ;; esac
    done
    mkdir -p /run/vmout /run/netns
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 vmout /run/vmout
    mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
    ip link set lo up
    for module in "${IPVS_MODULES[@]}"; do modprobe "$module" || echo "ipvs-vm: modprobe $module failed" >&2; done
    echo "ipvs-vm: kernel $(uname -r); $(head -1 /proc/net/ip_vs 2>/dev/null || echo 'NO IPVS')"
    rc=0
    bash /run/vmout/command || rc=$?
    echo "$rc" > /run/vmout/rc
    sync
    umount /run/vmout || true
    echo 1 > /proc/sys/kernel/sysrq
    echo o > /proc/sysrq-trigger
    sleep 10
}

# --- on the host ---------------------------------------------------------------------------------------------
ensure_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${SVCNET_VM_NO_INSTALL:-}" = 1 ] && die "missing Debian packages: ${missing[*]} (SVCNET_VM_NO_INSTALL=1)"
    [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (and not root to install them)"
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    echo "ipvs-vm: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
             "${missing[@]}" >&2; } || die "apt-get install ${missing[*]} failed"
}

find_kernel() {
    local version
    for version in $(ls /lib/modules 2>/dev/null | sort -rV); do
        if [ -f "/boot/vmlinuz-$version" ] && modinfo -k "$version" ip_vs >/dev/null 2>&1 \
           && modinfo -k "$version" 9p >/dev/null 2>&1; then
            echo "$version"; return 0
        fi
    done
    return 1
}

# copy a binary and the shared libraries it needs into the initramfs tree $1
copy_binary() {
    local root=$1 bin=$2 lib
    mkdir -p "$root$(dirname "$bin")" && cp -L "$bin" "$root$bin"
    for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")" && cp -Ln "$lib" "$root$lib"
    done
}

build_initramfs() {  # $1 kernel version -> path of a cpio.gz that mounts the host root over 9p
    local version=$1 out="$CACHE/initramfs-$1.cpio.gz" tree module
    if [ -f "$out" ] && [ "$out" -nt "$SELF" ]; then echo "$out"; return 0; fi
    mkdir -p "$CACHE"
    tree=$(mktemp -d)
    copy_binary "$tree" "$(readlink -f "$(command -v busybox)")"
    mv "$tree$(readlink -f "$(command -v busybox)")" "$tree/busybox.tmp"
    mkdir -p "$tree/bin" "$tree/proc" "$tree/sys" "$tree/dev" "$tree/newroot" "$tree/modules"
    mv "$tree/busybox.tmp" "$tree/bin/busybox"
    for module in $(modprobe -a -S "$version" --show-depends "${MODULES_9P[@]}" | awk '$1 == "insmod" {print $2}' \
                    | awk '!seen[$0]++'); do
        cp "$module" "$tree/modules/"
        basename "$module" >> "$tree/modules/order"
    done
    cat > "$tree/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
for m in $(cat /modules/order); do insmod "/modules/$m" || echo "initramfs: insmod $m failed"; done
i=0  # the virtio device may show up a moment after its driver loads
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot 2>/dev/null; do
    i=$((i + 1))
    if [ $i -ge 100 ]; then
        echo "initramfs: cannot mount the host root over 9p; virtio: $(cat /sys/bus/virtio/devices/*/mount_tag; ls -l /sys/bus/virtio/devices/*/driver; grep 9p /proc/filesystems; lsmod)"
        mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /newroot; dmesg | tail -15; poweroff -f
    fi
    sleep 0.1
done
guest=$(sed -n 's/.*svcnet.guest=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /dev /proc /sys
exec switch_root /newroot /bin/bash "$guest" --guest
EOF
    chmod +x "$tree/init"
    (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp" && mv "$out.tmp" "$out"
    rm -rf "$tree"
    echo "$out"
}

# KVM when /dev/kvm opens and the CPU shows vmx/svm: a /dev/kvm without them (nested, as on Firecracker
# guests) hangs before the kernel prints a line. SVCNET_VM_ACCEL=kvm|tcg overrides.
accelerator() {
    if [ -n "${SVCNET_VM_ACCEL:-}" ]; then echo "$SVCNET_VM_ACCEL"
    elif [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then echo kvm
    else echo tcg; fi
}

check() {
    [ "$(id -u)" = 0 ] || die "not root (qemu's 9p export of / and apt need root)"
    ensure_packages
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found"
    KERNEL_VERSION=$(find_kernel) || die "no kernel in /boot with ip_vs and 9p modules (apt install linux-image-amd64)"
}

run() {
    check
    local initramfs accel rc
    initramfs=$(build_initramfs "$KERNEL_VERSION")
    out=$(mktemp -d /tmp/svcnet-ipvs-vm.XXXXXX)  # global: the EXIT trap removes it
    trap 'rm -rf "$out"' EXIT
    {
        echo "cd $(printf '%q' "$PWD")"
        echo "export PYTHONDONTWRITEBYTECODE=1 SVCNET_IN_VM=1"
        for var in $(compgen -e | grep -E '^(SVCNET_|PYTEST_)' || true); do
            [ "$var" = SVCNET_IN_VM ] || echo "export $var=$(printf '%q' "${!var}")"
        done
        printf '%q ' "$@"; echo
    } > "$out/command"
    if [ "$(accelerator)" = kvm ]; then accel=(-enable-kvm -cpu host); else accel=(-accel tcg -cpu max); fi
    rc=0
    timeout --foreground "${SVCNET_VM_TIMEOUT:-300}" qemu-system-x86_64 "${accel[@]}" -m "${SVCNET_VM_MEMORY:-1024}" \
        -smp "${SVCNET_VM_CPUS:-2}" -nodefaults -no-reboot -display none -serial stdio -monitor none -nic none \
        -kernel "/boot/vmlinuz-$KERNEL_VERSION" -initrd "$initramfs" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 svcnet.guest=$SELF" \
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
        -virtfs "local,path=$out,mount_tag=vmout,security_model=none" </dev/null || rc=$?
    [ $rc -eq 124 ] && die "the VM did not finish within ${SVCNET_VM_TIMEOUT:-300}s"
    [ -f "$out/rc" ] || die "the VM stopped without running the command (qemu exit $rc)"
    return "$(cat "$out/rc")"
}

case "${1:-}" in
    --guest) guest ;;
    --check) check; echo "ipvs-vm: ready (kernel $KERNEL_VERSION, $(accelerator))" ;;
    --) shift; [ $# -gt 0 ] || die "usage: $0 [--check] [--] COMMAND [ARGS...]"; run "$@" ;;
    "") die "usage: $0 [--check] [--] COMMAND [ARGS...]" ;;
    *) run "$@" ;;
esac
