// idmap-bind SRC DST USERNS_PATH [ro]
// Bind-mounts SRC at DST with an idmap taken from a user namespace, so files owned by host
// uid 0 in SRC appear owned by that namespace's root. util-linux 2.38 (Debian 12) has no
// X-mount.idmap and Node cannot make these syscalls, hence this helper.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char *what, const char *arg) {
  fprintf(stderr, "idmap-bind: %s %s: %s\n", what, arg, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 5 || (argc == 5 && strcmp(argv[4], "ro") != 0)) {
    fprintf(stderr, "usage: idmap-bind SRC DST USERNS_PATH [ro]\n");
    return 2;
  }
  int userns = open(argv[3], O_RDONLY | O_CLOEXEC);
  if (userns < 0) return fail("open", argv[3]);
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, argv[1], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return fail("open_tree", argv[1]);
  struct mount_attr attr = {0};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | (argc == 5 ? MOUNT_ATTR_RDONLY : 0);
  attr.userns_fd = (unsigned long long)userns;
  // Private so that the machine's own mount events never propagate back to the image.
  attr.propagation = MS_PRIVATE;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return fail("mount_setattr", argv[1]);
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, argv[2], MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return fail("move_mount", argv[2]);
  return 0;
}
