import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../test-support/test-server.js';

let server: TestServer;

async function orgWithOwner(slug: string) {
  const owner = await server.signUp('owner');
  const res = await owner.post('/api/v1/orgs', { slug, name: `Org ${slug}` });
  assert.equal(res.status, 201);
  return owner;
}

async function join(owner: Awaited<ReturnType<typeof orgWithOwner>>, slug: string, role: string) {
  const user = await server.signUp(role);
  const invite = await owner.post(`/api/v1/orgs/${slug}/invitations`, {
    email: user.user.email,
    role,
  });
  assert.equal(invite.status, 201, invite.text);
  const accepted = await user.post(`/api/v1/invitations/${invite.body.token}/accept`);
  assert.equal(accepted.status, 200, accepted.text);
  return user;
}

describe('organizations, members and invitations', () => {
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  test('the creator becomes owner, and each user lists only their own orgs', async () => {
    const alice = await orgWithOwner('alpha');
    const bob = await orgWithOwner('bravo');
    const mine = await alice.get('/api/v1/orgs');
    assert.deepEqual(
      mine.body.items.map((o: { slug: string; role: string }) => [o.slug, o.role]),
      [['alpha', 'owner']],
    );
    assert.equal(mine.body.nextCursor, null);
    assert.equal(mine.body.items[0].plan.id, 'team');
    assert.equal((await bob.get('/api/v1/orgs/alpha')).status, 404);
    const taken = await bob.post('/api/v1/orgs', { slug: 'alpha', name: 'Again' });
    assert.equal(taken.status, 409);
    assert.equal(taken.body.error.code, 'slug_taken');
  });

  test('admins rename the org; members cannot', async () => {
    const owner = await orgWithOwner('charlie');
    const admin = await join(owner, 'charlie', 'admin');
    const member = await join(owner, 'charlie', 'member');
    const renamed = await admin.patch('/api/v1/orgs/charlie', { name: 'Charlie Ltd' });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.name, 'Charlie Ltd');
    assert.equal(renamed.body.role, 'admin');
    assert.equal((await member.patch('/api/v1/orgs/charlie', { name: 'Mine' })).status, 403);
  });

  test('an invitation is single use, expires, and is bound to its email', async () => {
    const owner = await orgWithOwner('delta');
    const invitee = await server.signUp('invitee');
    const other = await server.signUp('other');
    const invite = await owner.post('/api/v1/orgs/delta/invitations', {
      email: invitee.user.email.toUpperCase(),
      role: 'member',
    });
    assert.equal(invite.status, 201);
    assert.equal(invite.body.url, `${server.config.publicUrl}/invitations/${invite.body.token}`);
    const pending = await owner.get('/api/v1/orgs/delta/invitations');
    assert.equal(pending.body.items.length, 1);
    assert.equal(pending.body.items[0].token, undefined, 'the token is shown only once');

    const wrongUser = await other.post(`/api/v1/invitations/${invite.body.token}/accept`);
    assert.equal(wrongUser.status, 403);
    assert.equal(wrongUser.body.error.code, 'invitation_email_mismatch');
    const accepted = await invitee.post(`/api/v1/invitations/${invite.body.token}/accept`);
    assert.deepEqual(accepted.body, { slug: 'delta', name: 'Org delta', role: 'member' });
    const again = await invitee.post(`/api/v1/invitations/${invite.body.token}/accept`);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'invitation_used');
    assert.equal((await invitee.post('/api/v1/invitations/snapvm_inv_nope/accept')).status, 404);

    const late = await owner.post('/api/v1/orgs/delta/invitations', {
      email: other.user.email,
      role: 'member',
    });
    await server.db.asSystem((tx) =>
      tx.query(`UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, [
        late.body.id,
      ]),
    );
    const expired = await other.post(`/api/v1/invitations/${late.body.token}/accept`);
    assert.equal(expired.status, 422);
    assert.equal(expired.body.error.code, 'invitation_expired');
    assert.equal((await other.get('/api/v1/orgs/delta')).status, 404);

    const members = await owner.get('/api/v1/orgs/delta/members');
    assert.deepEqual(
      members.body.items.map((m: { user: { email: string }; role: string }) => m.role).sort(),
      ['member', 'owner'],
    );
  });

  test('only owners grant the owner role, and only admins invite', async () => {
    const owner = await orgWithOwner('echo');
    const admin = await join(owner, 'echo', 'admin');
    const member = await join(owner, 'echo', 'member');
    const promote = await admin.patch(`/api/v1/orgs/echo/members/${member.user.id}`, {
      role: 'owner',
    });
    assert.equal(promote.status, 403);
    assert.equal(
      (await admin.post('/api/v1/orgs/echo/invitations', { email: 'a@b.co', role: 'owner' }))
        .status,
      403,
    );
    assert.equal(
      (await member.post('/api/v1/orgs/echo/invitations', { email: 'a@b.co', role: 'member' }))
        .status,
      403,
    );
    const toAdmin = await admin.patch(`/api/v1/orgs/echo/members/${member.user.id}`, {
      role: 'admin',
    });
    assert.equal(toAdmin.status, 200);
    assert.equal(toAdmin.body.role, 'admin');
    assert.equal(
      (await admin.delete(`/api/v1/orgs/echo/members/${owner.user.id}`)).status,
      403,
      'admins cannot remove owners',
    );
  });

  test('an org never loses its last owner', async () => {
    const owner = await orgWithOwner('foxtrot');
    const demote = await owner.patch(`/api/v1/orgs/foxtrot/members/${owner.user.id}`, {
      role: 'admin',
    });
    assert.equal(demote.status, 409);
    assert.equal(demote.body.error.code, 'last_owner');
    const leave = await owner.delete(`/api/v1/orgs/foxtrot/members/${owner.user.id}`);
    assert.equal(leave.status, 409);

    const second = await join(owner, 'foxtrot', 'owner');
    assert.equal(
      (await owner.patch(`/api/v1/orgs/foxtrot/members/${owner.user.id}`, { role: 'admin' }))
        .status,
      200,
    );
    const last = await second.delete(`/api/v1/orgs/foxtrot/members/${second.user.id}`);
    assert.equal(last.status, 409, 'the remaining owner cannot leave either');
  });

  test('a member can leave; a removed member loses access', async () => {
    const owner = await orgWithOwner('golf');
    const leaver = await join(owner, 'golf', 'member');
    const removed = await join(owner, 'golf', 'member');
    assert.equal((await leaver.delete(`/api/v1/orgs/golf/members/${leaver.user.id}`)).status, 204);
    assert.equal((await owner.delete(`/api/v1/orgs/golf/members/${removed.user.id}`)).status, 204);
    for (const gone of [leaver, removed])
      assert.equal((await gone.get('/api/v1/orgs/golf/members')).status, 404);
    assert.equal((await owner.delete(`/api/v1/orgs/golf/members/${removed.user.id}`)).status, 404);
  });

  test('/me lists memberships with roles', async () => {
    const owner = await orgWithOwner('hotel');
    const member = await join(owner, 'hotel', 'member');
    const me = await member.get('/api/v1/me');
    assert.deepEqual(me.body.orgs, [{ slug: 'hotel', name: 'Org hotel', role: 'member' }]);
  });
});
