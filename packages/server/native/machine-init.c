// machine-init HOLDER_PID ROOT HOSTNAME [NAME=VALUE...] -- PROGRAM [ARG...]
// Becomes a machine, in one exec: joins the user namespace that HOLDER_PID owns (as its root,
// like `nsenter --user`), makes a PID namespace and forks its PID 1 (like `unshare --pid
// --fork`: this process stays in the host's mount namespace, pins no host mounts and waits for
// PID 1), which makes its mount, UTS, IPC, net and cgroup namespaces with private propagation,
// finishes the root filesystem at ROOT, pivots into it and execs PROGRAM with exactly the
// NAME=VALUE environment (like `env -i`). The server runs it as host root behind seccomp-exec.
//
// It replaces nsenter, two unshares and a shell script of about twenty mount, ln, mkdir,
// hostname, pivot_root and umount processes: each exec costs milliseconds of a cold start on a
// slow host. A failing step prints what failed to the console log and exits 1.
//
// The root filesystem: proc; a small /dev with only null, zero, full, random, urandom and tty
// bound from the host plus its own devpts (ptmx), shm and mqueue; read-only sysfs; a tmpfs
// /tmp. No new device nodes: the user namespace cannot make them, and binds of the host's
// harmless ones are all a workspace needs.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *root;

static void die(const char *what, const char *arg) {
  fprintf(stderr, "machine-init: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(1);
}

/** ROOT/rel, or dies when the path does not fit. */
static const char *at(const char *rel) {
  static char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", root, rel) >= (int)sizeof path) {
    errno = ENAMETOOLONG;
    die("path", rel);
  }
  return path;
}

static void mount_at(const char *source, const char *rel, const char *type, unsigned long flags,
                     const char *data) {
  const char *target = at(rel);
  if (mount(source, target, type, flags, data) < 0) die("mount", target);
}

static void link_at(const char *target, const char *rel) {
  if (symlink(target, at(rel)) < 0) die("symlink", at(rel));
}

static void mkdir_at(const char *rel) {
  if (mkdir(at(rel), 0777) < 0) die("mkdir", at(rel));
}

/** PID 1 of the machine: everything `sh sandbox-init` did, then exec. */
static void machine(const char *hostname, char **env, char **argv) {
  if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWCGROUP) < 0)
    die("unshare", "mount,uts,ipc,net,cgroup");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make-rprivate", "/");
  // pivot_root refuses a root mounted by the host (MNT_LOCKED in this namespace); a recursive
  // self-bind made here is ours to pivot onto.
  if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0) die("rbind", root);
  mount_at("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_at("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k");
  static const char *const devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++) {
    char rel[32], source[32];
    snprintf(rel, sizeof rel, "dev/%s", devices[i]);
    snprintf(source, sizeof source, "/dev/%s", devices[i]);
    int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) die("create", at(rel));
    close(fd);
    mount_at(source, rel, NULL, MS_BIND, NULL);
  }
  mkdir_at("dev/pts");
  mkdir_at("dev/shm");
  mkdir_at("dev/mqueue");
  mount_at("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620");
  link_at("pts/ptmx", "dev/ptmx");
  mount_at("tmpfs", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m");
  mount_at("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  link_at("/proc/self/fd", "dev/fd");
  link_at("/proc/self/fd/0", "dev/stdin");
  link_at("/proc/self/fd/1", "dev/stdout");
  link_at("/proc/self/fd/2", "dev/stderr");
  mount_at("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_at("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=256m");
  if (sethostname(hostname, strlen(hostname)) < 0) die("sethostname", hostname);
  if (chdir(root) < 0) die("chdir", root);
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root", root);
  // Until this lazy unmount, PID 1 holds a copy of every host mount (other machines' disks
  // too), so nothing is started before it.
  if (umount2(".", MNT_DETACH) < 0) die("umount", "old root");
  if (chdir("/") < 0) die("chdir", "/");
  execve(argv[0], argv, env);
  die("exec", argv[0]);
}

int main(int argc, char **argv) {
  int sep = 4;
  while (sep < argc && strcmp(argv[sep], "--") != 0) sep++;
  if (argc < 6 || sep >= argc - 1) {
    fprintf(stderr, "usage: machine-init HOLDER_PID ROOT HOSTNAME [NAME=VALUE...] -- PROGRAM [ARG...]\n");
    return 2;
  }
  root = argv[2];
  const char *hostname = argv[3];
  // The environment is argv[4..sep), NULL-terminated in place of the "--".
  char **env = &argv[4];
  argv[sep] = NULL;
  char **program = &argv[sep + 1];

  char userns[64];
  snprintf(userns, sizeof userns, "/proc/%s/ns/user", argv[1]);
  int fd = open(userns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", userns);
  if (setns(fd, CLONE_NEWUSER) < 0) die("setns", userns);
  close(fd);
  // Root of the machine's user namespace, as nsenter --user makes it.
  if (setgroups(0, NULL) < 0) die("setgroups", "0");
  if (setresgid(0, 0, 0) < 0) die("setresgid", "0");
  if (setresuid(0, 0, 0) < 0) die("setresuid", "0");
  if (unshare(CLONE_NEWPID) < 0) die("unshare", "pid");

  // As unshare --fork: the waiting parent leaves SIGINT and SIGTERM to PID 1.
  sigset_t block, previous;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  if (sigprocmask(SIG_BLOCK, &block, &previous) < 0) die("sigprocmask", "");
  pid_t child = fork();
  if (child < 0) die("fork", "");
  if (child == 0) {
    if (sigprocmask(SIG_SETMASK, &previous, NULL) < 0) die("sigprocmask", "");
    machine(hostname, env, program);
  }
  // The start gate belongs to PID 1's program; this process only waits, as unshare --fork did.
  close(3);
  int status;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) die("waitpid", "");
  }
  if (WIFSIGNALED(status)) {
    signal(WTERMSIG(status), SIG_DFL);
    kill(getpid(), WTERMSIG(status));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
