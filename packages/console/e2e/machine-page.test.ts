import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  createStartedMachine,
  type Person,
  type Stack,
  screenshot,
  screenText,
  signUpOwner,
  startStack,
  typeInto,
  waitForScreen,
} from './harness.js';

// The machine page's terminals, services and machine URL in real Chromium against the real
// server: a real machine on the local driver, xterm.js attached to its agent's PTY session
// through the server's terminal gateway, services the machine's agent supervises, and the
// machine's own URL.

let stack: Stack;
let person: Person;
let sessionPath = '';
let appUrl = '';

before(async () => {
  stack = await startStack({ machines: true });
  person = await stack.newPerson({ width: 1100, height: 700 });
  await signUpOwner(person, 'Tess', { slug: 'term', name: 'Terminal Org' });
  appUrl = (await createStartedMachine(person, 'term', 'dev')).urls.app;
});

after(async () => {
  await stack?.stop();
});

async function waitForStatus(page: Page, status: string): Promise<void> {
  await page.locator(`.terminal-status[data-status="${status}"]`).waitFor({ timeout: 15_000 });
}

let hello = '';

test('a new terminal opens from the machine page with its session id in the URL', async () => {
  const { page } = person;
  await page.goto('/orgs/term/machines/dev');
  await page.getByRole('heading', { name: 'No terminal sessions' }).waitFor();
  await page.getByRole('button', { name: 'New terminal' }).click();
  await page.waitForURL('**/orgs/term/machines/dev/sessions/*');
  sessionPath = new URL(page.url()).pathname;
});

test('typing a command in the browser terminal runs it and shows its output', async () => {
  const { page } = person;
  await waitForStatus(page, 'connected');
  await typeInto(page, 'echo hello-$RANDOM\n');
  const text = await waitForScreen(page, /^hello-\d+$/m, 'the echo output');
  hello = text.match(/^hello-\d+$/m)?.[0] ?? '';
  assert.ok(hello);
  await screenshot(page, '20-terminal');
});

test('a reload reattaches to the same session and restores the screen', async () => {
  const { page } = person;
  await page.reload();
  await waitForStatus(page, 'connected');
  const restored = await waitForScreen(page, new RegExp(`^${hello}$`, 'm'), 'the restored output');
  assert.match(restored, /echo hello-\$RANDOM/);
  assert.equal(
    new URLSearchParams(stack.attaches.at(-1)).has('offset'),
    false,
    'a fresh page has no offset: the agent sends the screen',
  );
});

test('a second tab on the same session sees what the first one types', async () => {
  const second = await person.context.newPage();
  await second.goto(sessionPath);
  await waitForStatus(second, 'connected');
  await waitForScreen(second, new RegExp(`^${hello}$`, 'm'), 'the shared output');
  await typeInto(second, 'echo from-second-$((40+2))\n');
  await waitForScreen(person.page, /^from-second-42$/m, 'input from the second tab');
  await second.close();
});

test('after a network drop the terminal shows it is reconnecting and resumes without repeats', async () => {
  const { page } = person;
  const before = await screenText(page);
  const count = (text: string) => text.split('\n').filter((line) => line === hello).length;
  const attachesBefore = stack.attaches.length;
  stack.dropTerminals();
  await page.locator('.terminal-status[data-status="reconnecting"]').waitFor({ timeout: 5_000 });
  await screenshot(page, '21-terminal-reconnecting');
  await waitForStatus(page, 'connected');
  const resume = new URLSearchParams(stack.attaches[attachesBefore]);
  assert.ok(Number(resume.get('offset')) > 0, `reconnect resumes from an offset: ${resume}`);
  await typeInto(page, 'echo after-drop-$((6*7))\n');
  const after = await waitForScreen(page, /^after-drop-42$/m, 'output after the drop');
  assert.equal(count(after), count(before), 'no output was replayed twice');
});

test('full-window mode gives the terminal the whole page', async () => {
  const { page } = person;
  await page.getByRole('button', { name: 'Full window' }).click();
  const box = await page.locator('.terminal-frame').boundingBox();
  assert.ok(box && box.width > 1000 && box.height > 600, JSON.stringify(box));
  await screenshot(page, '22-terminal-full-window');
  await page.getByRole('button', { name: 'Exit full window' }).click();
});

test('when the shell exits the terminal says so and stops reconnecting', async () => {
  const { page } = person;
  const attaches = stack.attaches.length;
  await typeInto(page, 'exit 3\n');
  await waitForStatus(page, 'exited');
  assert.match((await page.locator('.terminal-status').textContent()) ?? '', /exit code 3/);
  await page.waitForTimeout(1500);
  assert.equal(stack.attaches.length, attaches);
});

test('an ended session is listed with its exit code and can be removed', async () => {
  const { page } = person;
  await page.getByRole('link', { name: 'Back to dev' }).click();
  await page.waitForURL('**/orgs/term/machines/dev');
  const id = sessionPath.split('/').pop() as string;
  const item = page.getByRole('listitem').filter({ hasText: id });
  await item.getByText(/exited with code 3/).waitFor();
  await screenshot(page, '23-machine-sessions');
  await item.getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('heading', { name: 'No terminal sessions' }).waitFor();
});

test('a service is created from the machine page, serves its directory at the machine URL, and its logs follow', async () => {
  const { page, context } = person;
  await page.getByRole('heading', { name: 'No services' }).waitFor();
  await page.getByRole('button', { name: 'Add service' }).click();
  const form = page.getByRole('form', { name: 'Service definition' });
  await form.getByLabel('Name', { exact: true }).fill('Web!');
  await form.getByLabel('Command').fill('python3 -m http.server 8080');
  await form.getByLabel('HTTP port').fill('8080');
  await form.getByLabel(/Environment/).fill('PYTHONUNBUFFERED=1');
  await form.getByRole('button', { name: 'Create and start' }).click();
  await form.getByText(/^Name: service names are/).waitFor();
  await form.getByLabel('Name', { exact: true }).fill('web');
  await form.getByRole('button', { name: 'Create and start' }).click();
  const row = page.locator('tr[data-service="web"]');
  await row.locator('[data-status="running"], [data-status="ready"]').waitFor({ timeout: 15_000 });

  // The machine URL, in a tab: signed in through the main origin, then the app itself.
  const app = await context.newPage();
  await app.goto(appUrl);
  await app.getByText('Directory listing for /').waitFor({ timeout: 15_000 });
  assert.equal(new URL(app.url()).host, new URL(appUrl).host);
  await screenshot(app, '25-machine-url');

  await row.getByRole('button', { name: 'Logs web', exact: true }).click();
  const logs = page.getByRole('log', { name: 'Logs of web' });
  await logs.getByText(/Serving HTTP on/).waitFor({ timeout: 10_000 });
  // The browser resolves *.localhost itself (Node would not): the request goes from the tab.
  const marker = `followed-${Date.now()}`;
  const fetched = await app.goto(`${appUrl}${marker}`);
  assert.equal(fetched?.status(), 404, 'http.server answers a missing file with 404');
  await app.close();
  await logs.getByText(new RegExp(`GET /${marker}`)).waitFor({ timeout: 10_000 });
  await screenshot(page, '24-services');
});

test('a service can be stopped, started and deleted', async () => {
  const { page } = person;
  const row = page.locator('tr[data-service="web"]');
  await row.getByRole('button', { name: 'Stop web', exact: true }).click();
  await row.locator('[data-status="stopped"]').waitFor({ timeout: 15_000 });
  await row.getByRole('button', { name: 'Start web', exact: true }).click();
  await row.locator('[data-status="running"], [data-status="ready"]').waitFor({ timeout: 15_000 });
  page.once('dialog', (dialog) => dialog.accept());
  await row.getByRole('button', { name: 'Delete web', exact: true }).click();
  await page.getByRole('heading', { name: 'No services' }).waitFor({ timeout: 15_000 });
});

test('stopping the machine changes its badge', async () => {
  const { page } = person;
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await page
    .locator('h1 .badge[data-state="stopped"], .badge[data-state="stopped"]')
    .first()
    .waitFor({
      timeout: 30_000,
    });
  await screenshot(page, '26-machine-stopped');
});

test('the machine and terminal pages threw and logged nothing', () => {
  assert.deepEqual(person.problems, []);
});
