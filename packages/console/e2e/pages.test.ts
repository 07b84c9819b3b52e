import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { type Person, type Stack, screenshot, startStack } from './harness.js';

// The auth and organization pages against the real server in real Chromium: one owner signs
// up, creates an org, a machine record, a token; invites a second person, who accepts and sees
// only what a member may. Screenshots land in test-artifacts/console/.

let stack: Stack;
let owner: Person;
let member: Person;
const password = 'correct horse battery staple';
const ownerEmail = `owner-${Date.now()}@example.com`;
const memberEmail = `member-${Date.now()}@example.com`;
let invitationUrl = '';

before(async () => {
  stack = await startStack();
  owner = await stack.newPerson();
});

after(async () => {
  await stack?.stop();
});

async function fieldError(page: Page, label: string): Promise<string> {
  const input = page.getByLabel(label, { exact: true });
  const describedBy = (await input.getAttribute('aria-describedby')) ?? '';
  const errorId = describedBy.split(' ').find((id) => id.endsWith('-error'));
  if (!errorId) return '';
  return (await page.locator(`[id="${errorId}"]`).textContent()) ?? '';
}

test('a visitor is sent to sign in, and sign-up shows errors next to the fields', async () => {
  const { page } = owner;
  await page.goto('/');
  await page.waitForURL('**/signin');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await screenshot(page, '01-sign-in');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.getByRole('heading', { name: 'Create your account' }).waitFor();
  await page.getByLabel('Email', { exact: true }).fill('not-an-email');
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  assert.match(await fieldError(page, 'Name'), /Name is required/);
  assert.match(await fieldError(page, 'Email'), /email address/);
  assert.match(await fieldError(page, 'Password'), /at least 8/);
  assert.equal(
    await page.evaluate(() => document.activeElement?.getAttribute('name')),
    'name',
    'the first invalid field gets the focus',
  );
  await screenshot(page, '02-sign-up-errors');
});

test('signing up leads to creating the first organization', async () => {
  const { page } = owner;
  await page.getByLabel('Name', { exact: true }).fill('Olivia Owner');
  await page.getByLabel('Email', { exact: true }).fill(ownerEmail);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL('**/new-organization');
  await page.getByRole('heading', { name: 'Create your organization' }).waitFor();
  await page.getByLabel('Organization name').fill('Acme Team');
  assert.equal(await page.getByLabel('Slug').inputValue(), 'acme-team', 'slug follows the name');
  await page.getByLabel('Slug').fill('Acme--Team');
  assert.match(await fieldError(page, 'Slug'), /lowercase/);
  await page.getByLabel('Slug').fill('acme-');
  assert.match(await fieldError(page, 'Slug'), /end with a letter or digit/);
  await screenshot(page, '03-new-org-slug-error');
  await page.getByLabel('Slug').fill('acme-team');
  assert.equal(await fieldError(page, 'Slug'), '');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await page.waitForURL('**/orgs/acme-team');
  await page.getByRole('heading', { name: 'No machines yet' }).waitFor();
  await screenshot(page, '04-machines-empty');
});

test('the new-machine form checks the name as it is typed, with the API rules', async () => {
  const { page } = owner;
  await page.getByRole('link', { name: 'New machine' }).first().click();
  await page.waitForURL('**/orgs/acme-team/new-machine');
  const name = page.getByLabel('Name', { exact: true });
  await name.fill('1web');
  assert.equal(await fieldError(page, 'Name'), 'Name must start with a letter');
  await name.fill('my--web');
  assert.equal(await fieldError(page, 'Name'), 'Name must not contain two hyphens in a row');
  await name.fill('web');
  assert.equal(await fieldError(page, 'Name'), '');
  await page.getByLabel('Size').selectOption('small');
  await screenshot(page, '05-new-machine');
  await page.getByRole('button', { name: 'Create machine' }).click();
  await page.waitForURL('**/orgs/acme-team/machines/web');
  await page.getByRole('heading', { name: /^web/ }).waitFor();
  await page.getByRole('heading', { name: 'Timeline' }).waitFor();
  await screenshot(page, '06-machine-page');
});

test('a second machine with a taken name gets the server conflict next to the name', async () => {
  const { page } = owner;
  await page.goto('/orgs/acme-team/new-machine');
  await page.getByLabel('Name', { exact: true }).fill('web');
  await page.getByRole('button', { name: 'Create machine' }).click();
  await page.getByRole('alert').first().waitFor();
  assert.match(await fieldError(page, 'Name'), /web/);
  await screenshot(page, '06b-new-machine-name-taken');
  await page.goto('/orgs/acme-team');
  await page.locator('tr[data-machine="web"]').waitFor();
  await screenshot(page, '07-machines-list');
});

test('a machine created elsewhere appears in the open list without a reload', async () => {
  const { page, context } = owner;
  const created = await context.request.post('/api/v1/orgs/acme-team/machines', {
    headers: { origin: stack.url },
    data: { name: 'api', size: 'medium' },
  });
  assert.equal(created.status(), 201, await created.text());
  await page.locator('tr[data-machine="api"]').waitFor({ timeout: 12_000 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await screenshot(page, '07b-machines-list-dark');
  await page.emulateMedia({ colorScheme: 'light' });
});

test('the URL access level is saved and destroying asks for the name first', async () => {
  const { page } = owner;
  await page.goto('/orgs/acme-team/machines/api');
  const access = page.getByLabel('Who can open it');
  assert.equal(await access.inputValue(), 'private');
  await access.selectOption('org');
  await page.waitForFunction(async () => {
    const response = await fetch('/api/v1/orgs/acme-team/machines/api');
    return (await response.json()).urlAccess === 'org';
  });
  await page.reload();
  assert.equal(await page.getByLabel('Who can open it').inputValue(), 'org');

  await page.getByRole('button', { name: 'Destroy' }).click();
  const dialog = page.getByRole('dialog', { name: 'Destroy api?' });
  await dialog.waitFor();
  const confirm = dialog.getByRole('button', { name: 'Destroy machine' });
  assert.equal(await confirm.isDisabled(), true, 'nothing happens before the name is typed');
  const typed = dialog.getByLabel(/Type api to confirm/);
  assert.equal(
    await page.evaluate(() => document.activeElement?.id),
    'destroy-confirm',
    'the dialog takes the keyboard',
  );
  await typed.fill('ap');
  assert.equal(await confirm.isDisabled(), true);
  await typed.fill('api');
  await page.keyboard.press('Shift+Tab');
  assert.equal(
    await page.evaluate(() => document.activeElement?.textContent),
    'Cancel',
    'Shift+Tab from the first field wraps to the last button, not the page behind',
  );
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'destroy-confirm');
  await screenshot(page, '07c-destroy-dialog');
  await confirm.click();
  await page.waitForURL('**/orgs/acme-team');
  const machine = await page.evaluate(async () =>
    (await fetch('/api/v1/orgs/acme-team/machines/api')).json(),
  );
  assert.ok(
    machine.desiredState === 'destroyed' || machine.error?.code === 'not_found',
    JSON.stringify(machine),
  );
});

test('an API token is shown once and can be revoked', async () => {
  const { page } = owner;
  await page.getByRole('link', { name: 'Account' }).click();
  await page.waitForURL('**/account');
  await page.getByRole('table', { name: 'Signed-in sessions' }).getByText('this browser').waitFor();
  await page.getByLabel('Name', { exact: true }).fill('laptop CLI');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = await page.getByLabel('Token laptop CLI').inputValue();
  assert.ok(token.length >= 16, 'the secret is shown');
  await page.getByRole('cell', { name: 'laptop CLI' }).waitFor();
  await screenshot(page, '08-tokens');
  const me = await fetch(`${stack.url}/api/v1/me`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(me.status, 200, 'the token shown works against the API');
  page.once('dialog', (dialog) => dialog.accept());
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('heading', { name: 'No API tokens' }).waitFor();
  const revoked = await fetch(`${stack.url}/api/v1/me`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(revoked.status, 401);
});

test('an owner invites a member and gets a link to copy', async () => {
  const { page } = owner;
  await page.goto('/orgs/acme-team/members');
  await page.getByRole('heading', { name: 'Invite someone' }).waitFor();
  await page.getByLabel('Email', { exact: true }).fill(memberEmail);
  await page.getByLabel('Role', { exact: true }).selectOption('member');
  await page.getByRole('button', { name: 'Create invitation' }).click();
  invitationUrl = await page.getByLabel('Invitation link').inputValue();
  assert.match(invitationUrl, /^https?:\/\//);
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), invitationUrl);
  await screenshot(page, '09-members-invite');
});

test('the invited person signs up from the link, accepts and sees only what a member may', async () => {
  member = await stack.newPerson({ width: 390, height: 844 });
  const { page } = member;
  // The link carries the server's public URL; open its path on the origin under test.
  await page.goto(new URL(invitationUrl).pathname);
  await page.getByRole('heading', { name: "You're invited" }).waitFor();
  await screenshot(page, '10-invitation-signed-out-phone');
  await page.getByRole('link', { name: 'Create account' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Max Member');
  await page.getByLabel('Email', { exact: true }).fill(memberEmail);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Join organization' }).waitFor();
  await page.getByRole('button', { name: 'Accept invitation' }).click();
  await page.waitForURL('**/orgs/acme-team');
  await page.getByRole('heading', { name: 'No machines yet' }).waitFor();
  assert.equal(
    await page.locator('tr[data-machine="web"]').count(),
    0,
    "the owner's machine is hidden",
  );
  assert.equal(await page.getByRole('link', { name: 'Audit log' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Mine' }).count(), 0);
  await screenshot(page, '11-member-machines-phone');

  await page.getByRole('link', { name: 'Members' }).click();
  await page.getByRole('table', { name: 'Members' }).waitFor();
  assert.equal(await page.getByRole('heading', { name: 'Invite someone' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Remove' }).count(), 0);
  assert.equal(await page.getByRole('combobox', { name: /Role of/ }).count(), 0);
  await screenshot(page, '12-member-members-phone');

  await page.goto('/orgs/acme-team/audit');
  await page.getByRole('heading', { name: 'Only admins can see the audit log' }).waitFor();
  const audit = await page.evaluate(
    async () => (await fetch('/api/v1/orgs/acme-team/audit')).status,
  );
  assert.equal(audit, 403, 'the API agrees');
  const machine = await page.evaluate(
    async () => (await fetch('/api/v1/orgs/acme-team/machines/web')).status,
  );
  assert.equal(machine, 404, "another member's machine is not even visible");
});

test('an owner promotes the member, who then sees the whole org', async () => {
  const { page } = owner;
  await page.reload();
  const role = page.getByRole('combobox', { name: `Role of ${memberEmail}` });
  await role.selectOption('admin');
  await page.waitForFunction(async (email) => {
    const response = await fetch('/api/v1/orgs/acme-team/members');
    const body = await response.json();
    return body.items.some(
      (m: { user: { email: string }; role: string }) =>
        m.user.email === email && m.role === 'admin',
    );
  }, memberEmail);
  await member.page.goto('/orgs/acme-team');
  await member.page.locator('tr[data-machine="web"]').waitFor();
  await member.page.getByRole('link', { name: 'Audit log' }).click();
  await member.page.getByRole('table', { name: 'Audit log' }).waitFor();
  await screenshot(member.page, '13-admin-audit-phone');
});

test('the audit log lists who did what for admins', async () => {
  const { page } = owner;
  await page.goto('/orgs/acme-team/audit');
  const table = page.getByRole('table', { name: 'Audit log' });
  await table.waitFor();
  assert.ok((await table.locator('tbody tr').count()) >= 3);
  await screenshot(page, '14-audit');
});

test('signing out returns to the sign-in page and the session is gone', async () => {
  const { page } = owner;
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/signin');
  const status = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
  assert.equal(status, 401);
  await page.getByLabel('Email', { exact: true }).fill(ownerEmail);
  await page.getByLabel('Password', { exact: true }).fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').first().waitFor();
  await screenshot(page, '15-sign-in-wrong-password');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/orgs/acme-team');
});

test('a removed member loses the org at once', async () => {
  const { page } = owner;
  await page.goto('/orgs/acme-team/members');
  page.once('dialog', (dialog) => dialog.accept());
  await page
    .getByRole('row', { name: new RegExp(memberEmail) })
    .getByRole('button', { name: 'Remove' })
    .click();
  await page.getByRole('row', { name: new RegExp(memberEmail) }).waitFor({ state: 'detached' });
  await member.page.goto('/orgs/acme-team');
  await member.page.getByRole('heading', { name: 'Organization not found' }).waitFor();
  await screenshot(member.page, '16-removed-member-phone');
});

test('no page threw or logged an error', () => {
  assert.deepEqual(owner.problems, []);
  assert.deepEqual(member?.problems ?? [], []);
});
