// Two server processes' worth of reconcilers on one PostgreSQL database and one host: the
// row lease must make exactly one of them act on a machine at a time. PGlite is one process's
// database, so this runs only against a PostgreSQL server (SNAPVM_TEST_DATABASE_URL).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../server.js';
import { ApiClient, testDatabaseUrl } from '../test-support/test-server.js';
import {
  type LifecycleHost,
  prepareLifecycleHost,
  signUpOwner,
  timeline,
  waitForMachine,
} from './reconciler-test-support.js';

// Two servers need a database both can open: PGlite is one process's. CI runs this file in
// its PostgreSQL pass.
const skip = testDatabaseUrl ? false : 'needs a PostgreSQL server (SNAPVM_TEST_DATABASE_URL)';
const M = '/api/v1/orgs/acme/machines';

describe('two servers on one database', { skip }, () => {
  let host: LifecycleHost;
  let a: RunningServer;
  let b: RunningServer;

  before(async () => {
    host = await prepareLifecycleHost(25, { SNAPVM_RECONCILE_INTERVAL_MS: '200' });
    a = await host.start();
    b = await host.start();
  });
  after(() => host?.cleanup());

  test('both sweep every 200 ms, yet each change is carried out once', async () => {
    const viaA = await signUpOwner(a.url);
    const viaB = new ApiClient(b.url, viaA.credentials);
    assert.equal((await viaA.post(M, { name: 'shared' })).status, 201);
    await waitForMachine(viaB, `${M}/shared`, (m) => m.state === 'started');
    assert.equal((await viaB.post(`${M}/shared/stop`)).status, 202);
    await waitForMachine(viaA, `${M}/shared`, (m) => m.state === 'stopped');
    // Both wake it at once: one start, both execs answered.
    const [one, two] = await Promise.all([
      viaA.post(`${M}/shared/exec`, { command: ['hostname'] }),
      viaB.post(`${M}/shared/exec`, { command: ['hostname'] }),
    ]);
    assert.equal(one.body.stdout, 'shared\n', one.text);
    assert.equal(two.body.stdout, 'shared\n', two.text);

    const story = timeline((await viaA.get(`${M}/shared/events?limit=100`)).body);
    assert.doesNotMatch(story, /failed|adopted/, story);
    const observed = story.split(' · ').filter((e) => e.startsWith('observed'));
    assert.deepEqual(
      observed.map((e) => e.replace(/ \(.*\)$/, '')),
      [
        'observed ∅→creating',
        'observed creating→starting',
        'observed starting→started',
        'observed started→stopping',
        'observed stopping→stopped',
        'observed stopped→starting',
        'observed starting→started',
      ],
      story,
    );
    assert.equal((await host.driver().list()).length, 1, 'one sandbox on the host');
  });
});
