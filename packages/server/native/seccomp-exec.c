// seccomp-exec PROGRAM [ARG...]
// Installs a deny-list seccomp filter, then execs PROGRAM; every descendant inherits it. The
// server runs it as host root in front of the nsenter/unshare chain that becomes a machine
// (and in front of every exec into one), so no_new_privs is not needed and setuid programs
// such as sudo keep working inside. The list closes kernel interfaces a workspace does not
// need that a user namespace alone leaves reachable or that are not namespaced at all
// (keyrings, BPF, perf, userfaultfd, io_uring), and the clock and module calls for good measure.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__)
#error "seccomp-exec: only x86_64 is supported so far"
#endif

static const int denied[] = {
    SYS_bpf,           SYS_perf_event_open, SYS_userfaultfd,     SYS_keyctl,
    SYS_add_key,       SYS_request_key,     SYS_io_uring_setup,  SYS_io_uring_enter,
    SYS_io_uring_register, SYS_kexec_load,  SYS_kexec_file_load, SYS_init_module,
    SYS_finit_module,  SYS_delete_module,   SYS_open_by_handle_at, SYS_acct,
    SYS_swapon,        SYS_swapoff,         SYS_iopl,            SYS_ioperm,
    SYS_settimeofday,  SYS_clock_settime,   SYS_clock_adjtime,   SYS_adjtimex,
    SYS_syslog,        SYS_lookup_dcookie,  SYS_uselib,
};

#define N_DENIED (sizeof denied / sizeof denied[0])
#define X32_SYSCALL_BIT 0x40000000

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: seccomp-exec PROGRAM [ARG...]\n");
    return 2;
  }
  struct sock_filter filter[6 + N_DENIED * 2 + 1];
  size_t n = 0;
  // Any other architecture (32-bit entry points) is refused outright.
  filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  filter[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  // The x32 ABI reaches the same calls under other numbers.
  filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
  filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  for (size_t i = 0; i < N_DENIED; i++) {
    filter[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)denied[i], 0, 1);
    filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  }
  filter[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = {.len = (unsigned short)n, .filter = filter};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    fprintf(stderr, "seccomp-exec: seccomp: %s\n", strerror(errno));
    return 1;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "seccomp-exec: %s: %s\n", argv[1], strerror(errno));
  return 127;
}
