// Benches that boot real machines (user namespaces, cgroups, a bridge) need Linux and root;
// say so at once instead of failing halfway.
export function requireRootOnLinux(bench) {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    console.error(`${bench} bench: boots real machines and needs Linux and root: run it as root.`);
    process.exit(1);
  }
}
