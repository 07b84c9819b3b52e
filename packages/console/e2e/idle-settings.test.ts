import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Person, type Stack, screenshot, signUp, startStack } from './harness.js';

// The org's idle defaults and a machine's own idle periods, in real Chromium against the real
// server (machine records only: idling itself is tested in the server's lifecycle tests).

let stack: Stack;
let owner: Person;
let member: Person;

before(async () => {
  stack = await startStack();
  owner = await stack.newPerson();
  member = await stack.newPerson();
  await signUp(owner, 'Olga');
  await signUp(member, 'Mo');
  await owner.api('POST', '/api/v1/orgs', { slug: 'idlers', name: 'Idlers' });
  await owner.api('POST', '/api/v1/orgs/idlers/machines', { name: 'web' });
  const me = await member.api('GET', '/api/v1/me');
  const invitation = await owner.api('POST', '/api/v1/orgs/idlers/invitations', {
    email: me.user.email,
    role: 'member',
  });
  await member.api('POST', `/api/v1/invitations/${invitation.token}/accept`);
});

after(async () => {
  await stack?.stop();
});

test('an owner changes the org idle defaults in Settings, with errors next to the field', async () => {
  const { page } = owner;
  await page.goto('/orgs/idlers');
  await page.getByRole('link', { name: 'Settings' }).click();
  await page.getByRole('heading', { name: 'Idle' }).waitFor();
  const suspend = page.getByLabel('Suspend when idle: minutes');
  assert.equal(await suspend.inputValue(), '5', 'the server default: 5 minutes');
  assert.equal(await page.getByLabel('Stop when idle: minutes').inputValue(), '60');
  await suspend.fill('0.5');
  await page.getByRole('button', { name: 'Save idle settings' }).click();
  await page.getByText('At least 1 minute').waitFor();
  await screenshot(page, 'idle-01-org-error');
  await suspend.fill('10');
  await page.getByLabel('Stop when idle', { exact: true }).selectOption('never');
  await page.getByRole('button', { name: 'Save idle settings' }).click();
  await page.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
  const org = await owner.api('GET', '/api/v1/orgs/idlers');
  assert.deepEqual(org.idle, { suspendAfterSeconds: 600, stopAfterSeconds: null });
  await screenshot(page, 'idle-02-org-saved');
  assert.deepEqual(owner.problems, []);
});

test('the machine page shows where each period comes from, overrides it and resets it', async () => {
  const { page } = owner;
  await page.goto('/orgs/idlers/machines/web');
  const summary = page.locator('dt:has-text("When idle") + dd');
  await summary.filter({ hasText: 'suspends after 10 min (org default)' }).waitFor();
  assert.match((await summary.textContent()) ?? '', /never stops \(org default\)/);
  const suspend = page.getByLabel('Suspend when idle', { exact: true });
  assert.equal(await suspend.inputValue(), 'inherit');
  assert.equal(
    (await suspend.locator('option[value="inherit"]').textContent())?.trim(),
    'Org default (10 min)',
  );

  await suspend.selectOption('after');
  await page.getByLabel('Suspend when idle: minutes').fill('30');
  await page.getByRole('button', { name: 'Save idle settings' }).click();
  await summary.filter({ hasText: 'suspends after 30 min (this machine)' }).waitFor();
  let machine = await owner.api('GET', '/api/v1/orgs/idlers/machines/web');
  assert.deepEqual(machine.idle, {
    suspendAfterSeconds: 1800,
    stopAfterSeconds: null,
    source: { suspendAfterSeconds: 'machine', stopAfterSeconds: 'org' },
  });
  await screenshot(page, 'idle-03-machine-override');

  await page.getByLabel('Suspend when idle', { exact: true }).selectOption('inherit');
  await page.getByRole('button', { name: 'Save idle settings' }).click();
  await summary.filter({ hasText: 'suspends after 10 min (org default)' }).waitFor();
  machine = await owner.api('GET', '/api/v1/orgs/idlers/machines/web');
  assert.equal(machine.idle.source.suspendAfterSeconds, 'org');
  assert.deepEqual(owner.problems, []);
});

test('a member has no Settings link and sees the defaults read-only', async () => {
  const { page } = member;
  await page.goto('/orgs/idlers');
  await page.getByRole('link', { name: 'Members' }).waitFor();
  assert.equal(await page.getByRole('link', { name: 'Settings' }).count(), 0);
  await page.goto('/orgs/idlers/settings');
  await page.getByText('Only admins and owners can change these').waitFor();
  assert.match(
    (await page.locator('.card').textContent()) ?? '',
    /Machines suspend after 10 min and never stop when idle/,
  );
  assert.equal(await page.getByRole('button', { name: 'Save idle settings' }).count(), 0);
  await screenshot(page, 'idle-04-member-read-only');
  assert.deepEqual(member.problems, []);
});
