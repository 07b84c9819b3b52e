import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  defaultImageRecipe,
  ensureBaseImage,
  hashImageRecipe,
  resolveImageCacheDir,
} from './image.js';
import { prepareLocalHost } from './local/test-support.js';

describe('base image', () => {
  it('keys an image by its recipe, whatever the package order', () => {
    const reordered = {
      ...defaultImageRecipe,
      packages: [...defaultImageRecipe.packages].reverse(),
    };
    assert.equal(hashImageRecipe(reordered), hashImageRecipe(defaultImageRecipe));
    const more = { ...defaultImageRecipe, packages: [...defaultImageRecipe.packages, 'htop'] };
    assert.notEqual(hashImageRecipe(more), hashImageRecipe(defaultImageRecipe));
    assert.notEqual(
      hashImageRecipe({ ...defaultImageRecipe, layout: 99 }),
      hashImageRecipe(defaultImageRecipe),
    );
  });

  it('shares one cache through SNAPVM_IMAGE_CACHE, else uses the data directory', () => {
    const saved = process.env.SNAPVM_IMAGE_CACHE;
    try {
      delete process.env.SNAPVM_IMAGE_CACHE;
      assert.equal(resolveImageCacheDir('/data'), '/data/images');
      process.env.SNAPVM_IMAGE_CACHE = '/shared/images';
      assert.equal(resolveImageCacheDir('/data'), '/shared/images');
    } finally {
      if (saved === undefined) delete process.env.SNAPVM_IMAGE_CACHE;
      else process.env.SNAPVM_IMAGE_CACHE = saved;
    }
  });

  it('reports a failed build with the fix, leaving no partial image or lock', {}, async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'snapvm-image-'));
    try {
      const progress: string[] = [];
      // Nothing listens on port 9: debootstrap fails at its first download.
      const recipe = { ...defaultImageRecipe, mirror: 'http://127.0.0.1:9/debian' };
      await assert.rejects(
        ensureBaseImage({ cacheDir, recipe, onProgress: (l) => progress.push(l) }),
        /debootstrap exited with \d+; check that http:\/\/127\.0\.0\.1:9\/debian is reachable/,
      );
      assert.match(progress[0] ?? '', /building base image debian-bookworm-\w+ with debootstrap/);
      assert.deepEqual(readdirSync(cacheDir), []);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it('reuses a built image without running debootstrap again', {}, async () => {
    const { rootfs } = await prepareLocalHost();
    const progress: string[] = [];
    const started = Date.now();
    const again = await ensureBaseImage({
      cacheDir: join(rootfs, '..'),
      onProgress: (l) => progress.push(l),
    });
    assert.equal(again.rootfs, rootfs);
    assert.deepEqual(progress, []);
    assert.ok(Date.now() - started < 1_000);
    for (const tool of [
      'bin/bash',
      'usr/bin/python3',
      'usr/bin/git',
      'usr/bin/curl',
      'usr/bin/sudo',
      'usr/bin/tini',
    ]) {
      assert.ok(existsSync(join(rootfs, tool)), `${tool} missing from the image`);
    }
  });
});
