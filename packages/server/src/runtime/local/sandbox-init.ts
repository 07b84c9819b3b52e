// The first program of a machine: runs as PID 1 of its new namespaces, as root of its user
// namespace (an unprivileged uid range on the host), still with the host's /bin/sh and tools.
// It finishes the root filesystem, pivots into it, then hands PID 1 over to tini running the
// agent, which loads while the host wires the network and waits for the host's go on the start
// gate (fd 3, passed down through env and tini) before it starts services or listens.
//
// Arguments: $1 = merged root (host path), $2 = hostname.
export const sandboxInitScript = `set -eu
R=$1
# pivot_root refuses a root mounted by the host (MNT_LOCKED in this namespace); a recursive
# self-bind made here is ours to pivot onto.
mount --rbind "$R" "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=64k tmpfs "$R/dev"
for n in null zero full random urandom tty; do
  : > "$R/dev/$n"
  mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=64m tmpfs "$R/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=256m tmpfs "$R/tmp"
hostname "$2"
cd "$R"
pivot_root . .
# Until this lazy unmount, PID 1 holds a copy of every host mount (other machines' disks too),
# so the agent is started only after it.
umount -l .
cd /
exec /usr/bin/env -i \\
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  HOME=/root LANG=C.UTF-8 TERM=xterm-256color \\
  SNAPVM_AGENT_SOCKET=/run/snapvm/agent.sock \\
  SNAPVM_AGENT_TOKEN_FILE=/run/snapvm/agent.token \\
  SNAPVM_AGENT_STATE_DIR=/var/lib/snapvm \\
  SNAPVM_AGENT_START_GATE=3 \\
  /usr/bin/tini -- /usr/local/bin/node /opt/snapvm/agent.mjs
`;
