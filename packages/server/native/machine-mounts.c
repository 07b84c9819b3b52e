// machine-mounts IMAGE POINTS ROOTFS USERNS_PATH UID [SRC DST OPTIONS]...
// Mounts a machine's root filesystem in one process (it replaces a shell script of nine mount
// processes; each exec costs milliseconds of a cold start on a slow host):
// - IMAGE, the machine's ext4 disk, on a loop device (auto-cleared) at POINTS/disk, nosuid and
//   nodev; "-" when it is mounted already. POINTS/disk/{upper,work} are made on first use,
//   owned by UID (the machine's root on the host).
// - ROOTFS bound read-only and idmapped at POINTS/lower: the idmap comes from the user
//   namespace USERNS_PATH, so files owned by host uid 0 appear owned by that namespace's root
//   (util-linux 2.38 has no X-mount.idmap and Node cannot make these syscalls).
// - The overlay of both at POINTS/merged (nodev).
// - Each SRC bound at DST inside POINTS/merged with OPTIONS, a comma list of ro, nosuid,
//   nodev, noexec and ifexists (skip a DST that does not exist). DST is resolved as if
//   POINTS/merged were the root (openat2 RESOLVE_IN_ROOT): the upper layer belongs to the
//   machine, and a symlink it planted must not lead this host-root mount out of its tree.
//   The flags are set on the new mount before it is attached (open_tree, mount_setattr,
//   move_mount), so it is never visible writable.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "machine-mounts: %s %s: %s\n", what, arg, strerror(errno));
  exit(1);
}

static const char *join(const char *dir, const char *rel) {
  char *path;
  if (asprintf(&path, "%s/%s", dir, rel) < 0) die("asprintf", rel);
  return path;
}

/** Attaches IMAGE to a free loop device; returns its path. The device goes when unmounted. */
static const char *attach_loop(const char *image) {
  int backing = open(image, O_RDWR | O_CLOEXEC);
  if (backing < 0) die("open", image);
  int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) die("open", "/dev/loop-control");
  static char device[64];
  for (int attempt = 0;; attempt++) {
    int n = ioctl(control, LOOP_CTL_GET_FREE);
    if (n < 0) die("LOOP_CTL_GET_FREE", image);
    snprintf(device, sizeof device, "/dev/loop%d", n);
    int loop = open(device, O_RDWR | O_CLOEXEC);
    if (loop < 0) die("open", device);
    struct loop_config config;
    memset(&config, 0, sizeof config);
    config.fd = (unsigned)backing;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    strncpy((char *)config.info.lo_file_name, image, LO_NAME_SIZE - 1);
    if (ioctl(loop, LOOP_CONFIGURE, &config) == 0) {
      // Kept open until the mount holds the device: auto-clear detaches it on the last close
      // while unmounted, so a failed mount leaves nothing behind.
      close(control);
      close(backing);
      return device;
    }
    // Another process took the device between GET_FREE and CONFIGURE: take the next one.
    if (errno != EBUSY || attempt >= 20) die("LOOP_CONFIGURE", device);
    close(loop);
  }
}

static int open_in(int dirfd, const char *rel, unsigned long long resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = resolve;
  return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
}

/** Clones SRC's mount tree, sets `attr` on it and attaches it at `target_fd`. */
static void bind_at(const char *src, int target_fd, const char *what, struct mount_attr *attr) {
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) die("open_tree", src);
  if ((attr->attr_set || attr->propagation) &&
      syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, attr, sizeof *attr) < 0)
    die("mount_setattr", src);
  if (syscall(SYS_move_mount, tree, "", target_fd, "",
              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die("move_mount", what);
  close(tree);
}

int main(int argc, char **argv) {
  if (argc < 6 || (argc - 6) % 3 != 0) {
    fprintf(stderr,
            "usage: machine-mounts IMAGE POINTS ROOTFS USERNS_PATH UID [SRC DST OPTIONS]...\n");
    return 2;
  }
  const char *image = argv[1], *points = argv[2], *rootfs = argv[3], *userns_path = argv[4];
  char *end;
  long uid = strtol(argv[5], &end, 10);
  if (*end || uid <= 0) {
    fprintf(stderr, "machine-mounts: bad UID %s\n", argv[5]);
    return 2;
  }
  const char *disk = join(points, "disk"), *lower = join(points, "lower"),
             *merged = join(points, "merged");

  if (strcmp(image, "-") != 0) {
    const char *device = attach_loop(image);
    if (mount(device, disk, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0) die("mount", disk);
  }
  const char *upper = join(disk, "upper"), *work = join(disk, "work");
  struct stat st;
  if (stat(upper, &st) < 0 || !S_ISDIR(st.st_mode)) {
    if (mkdir(upper, 0777) < 0 && errno != EEXIST) die("mkdir", upper);
    if (mkdir(work, 0777) < 0 && errno != EEXIST) die("mkdir", work);
    if (chown(upper, (uid_t)uid, (gid_t)uid) < 0) die("chown", upper);
    if (chown(work, (uid_t)uid, (gid_t)uid) < 0) die("chown", work);
  }

  int userns = open(userns_path, O_RDONLY | O_CLOEXEC);
  if (userns < 0) die("open", userns_path);
  int lower_fd = open_in(AT_FDCWD, lower, 0);
  if (lower_fd < 0) die("open", lower);
  struct mount_attr idmap;
  memset(&idmap, 0, sizeof idmap);
  idmap.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY;
  idmap.userns_fd = (unsigned long long)userns;
  // Private, so that the machine's own mount events never propagate back to the image.
  idmap.propagation = MS_PRIVATE;
  bind_at(rootfs, lower_fd, lower, &idmap);
  close(lower_fd);
  close(userns);

  char *options;
  if (asprintf(&options, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work) < 0)
    die("asprintf", "overlay");
  if (mount("overlay", merged, "overlay", MS_NODEV, options) < 0) die("mount overlay", merged);

  int root = open(merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) die("open", merged);
  for (int i = 6; i + 2 < argc; i += 3) {
    const char *src = argv[i], *dst = argv[i + 1];
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    int if_exists = 0;
    char *list = strdup(argv[i + 2]), *save = NULL;
    for (char *opt = strtok_r(list, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
      if (!strcmp(opt, "ro")) attr.attr_set |= MOUNT_ATTR_RDONLY;
      else if (!strcmp(opt, "nosuid")) attr.attr_set |= MOUNT_ATTR_NOSUID;
      else if (!strcmp(opt, "nodev")) attr.attr_set |= MOUNT_ATTR_NODEV;
      else if (!strcmp(opt, "noexec")) attr.attr_set |= MOUNT_ATTR_NOEXEC;
      else if (!strcmp(opt, "ifexists")) if_exists = 1;
      else {
        fprintf(stderr, "machine-mounts: unknown option %s\n", opt);
        return 2;
      }
    }
    free(list);
    int target = open_in(root, dst, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (target < 0) {
      if (errno == ENOENT && if_exists) continue;
      die("open", join(merged, dst));
    }
    bind_at(src, target, join(merged, dst), &attr);
    close(target);
  }
  return 0;
}
