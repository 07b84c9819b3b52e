// The base image every machine starts from: a Debian bookworm root filesystem built once with
// debootstrap, cached by a hash of its recipe, and never written again once it is in place.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ImageRecipe {
  suite: string;
  variant: string;
  mirror: string;
  packages: readonly string[];
  /** Bumped whenever the post-debootstrap steps below change, so old builds are not reused. */
  layout: number;
}

export interface BaseImage {
  /** Root filesystem directory, owned by host root; mount it read-only (idmapped) only. */
  rootfs: string;
  key: string;
}

export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}

export const defaultImageRecipe: ImageRecipe = {
  suite: 'bookworm',
  variant: 'minbase',
  mirror: process.env.SNAPVM_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian',
  packages: [
    'bash',
    'coreutils',
    'procps',
    'iproute2',
    'iputils-ping',
    'curl',
    'ca-certificates',
    'git',
    'python3',
    'less',
    'vim-tiny',
    'nano',
    'sudo',
    'tini',
  ],
  layout: 2,
};

export function hashImageRecipe(recipe: ImageRecipe): string {
  const canonical = JSON.stringify({ ...recipe, packages: [...recipe.packages].sort() });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** SNAPVM_IMAGE_CACHE lets several data directories (and test runs) share one build. */
export function resolveImageCacheDir(dataDir: string): string {
  return process.env.SNAPVM_IMAGE_CACHE || join(dataDir, 'images');
}

export interface EnsureImageOptions {
  cacheDir: string;
  recipe?: ImageRecipe;
  onProgress?: (line: string) => void;
}

/**
 * Returns the cached image for the recipe, building it first if needed. Concurrent callers
 * (other processes too) wait on a lock directory instead of running debootstrap twice.
 */
export async function ensureBaseImage(options: EnsureImageOptions): Promise<BaseImage> {
  const recipe = options.recipe ?? defaultImageRecipe;
  const key = `debian-${recipe.suite}-${hashImageRecipe(recipe)}`;
  const rootfs = join(options.cacheDir, key);
  const progress = options.onProgress ?? (() => {});
  if (isComplete(rootfs)) return { rootfs, key };

  mkdirSync(options.cacheDir, { recursive: true, mode: 0o700 });
  const lock = `${rootfs}.lock`;
  await acquireLock(lock, progress);
  try {
    if (isComplete(rootfs)) return { rootfs, key };
    assertDebootstrapInstalled();
    const staging = `${rootfs}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    progress(`building base image ${key} with debootstrap (about 90 s, once)`);
    try {
      await runDebootstrap(recipe, staging, progress);
      prepareMountPoints(staging);
      writeFileSync(join(staging, '.snapvm-image.json'), `${JSON.stringify({ key, recipe })}\n`);
      renameSync(staging, rootfs);
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      throw err;
    }
    progress(`base image ${key} ready`);
    return { rootfs, key };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isComplete(rootfs: string): boolean {
  // The manifest is written last, before the atomic rename, so its presence means complete.
  return existsSync(join(rootfs, '.snapvm-image.json'));
}

function assertDebootstrapInstalled(): void {
  const found = spawnSync('sh', ['-c', 'command -v debootstrap'], { env: withSbinPath() });
  if (found.status !== 0) {
    throw new ImageBuildError(
      'debootstrap is not installed, so the base image cannot be built: run `apt-get install -y debootstrap` (or scripts/host-deps.sh debootstrap) as root',
    );
  }
}

function withSbinPath(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
}

async function acquireLock(lock: string, progress: (line: string) => void): Promise<void> {
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (lockOwnerIsGone(lock)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (!announced) progress('waiting for another process that is building the base image');
    announced = true;
    await sleep(500);
  }
}

function lockOwnerIsGone(lock: string): boolean {
  try {
    const pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return true;
    // No pid file yet: the owner is between mkdir and write, unless the lock is old.
    if (code === 'ENOENT') return Date.now() - statSync(lock).mtimeMs > 10_000;
    return false;
  }
}

function runDebootstrap(
  recipe: ImageRecipe,
  target: string,
  progress: (line: string) => void,
): Promise<void> {
  const args = [
    `--variant=${recipe.variant}`,
    `--include=${recipe.packages.join(',')}`,
    recipe.suite,
    target,
    recipe.mirror,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('debootstrap', args, {
      env: withSbinPath(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        // debootstrap prints one "I: ..." line per step; that is the useful progress.
        if (line.startsWith('I: ') || line.startsWith('E: ') || line.startsWith('W: '))
          progress(`debootstrap: ${line.slice(3)}`);
      }
    };
    child.stdout.on('data', onLine);
    child.stderr.on('data', onLine);
    child.on('error', (err) => reject(new ImageBuildError(`debootstrap failed to run: ${err}`)));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      reject(
        new ImageBuildError(
          `debootstrap exited with ${code}; check that ${recipe.mirror} is reachable and there is free disk space, then retry. Last output:\n${tail.join('\n')}`,
        ),
      );
    });
  });
}

/** Files and directories the host binds into every machine must exist in the image. */
function prepareMountPoints(rootfs: string): void {
  for (const dir of ['opt/snapvm', 'run/snapvm', 'var/lib/snapvm', 'usr/local/bin']) {
    mkdirSync(join(rootfs, dir), { recursive: true, mode: 0o755 });
  }
  closeSync(openSync(join(rootfs, 'usr/local/bin/node'), 'a', 0o755));
  // The downloaded packages are only needed during the build.
  rmSync(join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
  mkdirSync(join(rootfs, 'var/cache/apt/archives/partial'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/hostname'), 'snapvm\n');
  // Each machine gets its own hosts and resolv.conf bound over these (minbase has no hosts).
  writeFileSync(join(rootfs, 'etc/hosts'), '127.0.0.1\tlocalhost\n');
  writeFileSync(join(rootfs, 'etc/resolv.conf'), '');
}
