import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import {
  createStartedMachine,
  type Person,
  type Stack,
  screenshot,
  signUpOwner,
  startStack,
  typeInto,
  waitForScreen,
} from './harness.js';

// The machine page's lifecycle with a real machine: the Start / Stop / Suspend buttons and the
// live badge, the activity line (why it is awake, when it will idle) while a terminal is
// attached and while nothing is, the timeline's causes, and the terminal's "waking" state
// when it is opened on a suspended or a stopped machine. Screenshots at laptop and phone
// widths go to test-artifacts/console/3x-*.png.

const MACHINE = '/orgs/awake/machines/box';
const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 800 };

let stack: Stack;
let person: Person;
let sessionPath = '';

/**
 * Every value the terminal status and the machine badge take, in order, recorded in the page
 * itself: some last only a few hundred milliseconds (a warm wake, "stopping").
 */
async function recordChanges(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const seen: { status: string[]; badge: string[] } = { status: [], badge: [] };
    (window as unknown as { __seen: typeof seen }).__seen = seen;
    const note = (list: string[], value: string | null | undefined) => {
      if (value && list.at(-1) !== value) list.push(value);
    };
    new MutationObserver(() => {
      note(seen.status, document.querySelector('.terminal-status')?.getAttribute('data-status'));
      note(seen.badge, document.querySelector('.machine-title .badge')?.getAttribute('data-state'));
    }).observe(document, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ['data-status', 'data-state'],
    });
  });
}

async function seen(page: Page, what: 'status' | 'badge'): Promise<string[]> {
  return page.evaluate(
    (key) => (window as unknown as { __seen: Record<string, string[]> }).__seen[key] ?? [],
    what,
  );
}

const api = (method: 'GET' | 'POST' | 'PATCH', path: string, data?: unknown) =>
  person.api(method, `/api/v1/orgs/awake${path}`, data);

const badge = (page: Page, state: string) =>
  page.locator(`.machine-title .badge[data-state="${state}"]`);
const activity = (page: Page) => page.getByRole('region', { name: 'Activity' });

/** Waits for the activity line's headline to read `pattern`; a failure shows what it said. */
async function waitForActivity(page: Page, pattern: RegExp): Promise<void> {
  const deadline = Date.now() + 15_000;
  let text = '';
  while (Date.now() < deadline) {
    text = ((await activity(page).locator('.activity-headline').textContent()) ?? '').trim();
    if (pattern.test(text)) return;
    await page.waitForTimeout(200);
  }
  throw new Error(`the activity line never read ${pattern}; it says: ${text}`);
}

/** Laptop and phone screenshots of the page as it is now. */
async function screenshots(page: Page, name: string): Promise<void> {
  await screenshot(page, name);
  await page.setViewportSize(PHONE);
  await screenshot(page, `${name}-phone`);
  await page.setViewportSize(LAPTOP);
}

before(async () => {
  // Its own host lane, so it can run beside machine-page.test.ts; the idle monitor asks the
  // agent twice a second, so what keeps the machine awake shows up within a page poll. New
  // orgs idle machines after 2 s (suspend) and 5 s (stop), below what the API accepts, so
  // a machine that keeps the defaults shows idling within seconds.
  stack = await startStack({
    machines: true,
    lane: 33,
    env: {
      SNAPVM_IDLE_POLL_MS: '500',
      SNAPVM_IDLE_SUSPEND_SECONDS: '2',
      SNAPVM_IDLE_STOP_SECONDS: '5',
    },
  });
  person = await stack.newPerson(LAPTOP);
  await recordChanges(person.context);
  await signUpOwner(person, 'Tess', { slug: 'awake', name: 'Awake Org' });
  // This machine suspends after 10 min and stops after 1 h.
  await createStartedMachine(person, 'awake', 'box', {
    idle: { suspendAfterSeconds: 600, stopAfterSeconds: 3600 },
  });
});

after(async () => {
  await stack?.stop();
});

test('with nothing attached the activity line counts down to the next suspend', async () => {
  const { page } = person;
  await page.goto(MACHINE);
  await badge(page, 'started').waitFor({ timeout: 15_000 });
  await waitForActivity(
    page,
    /^Awake: nothing attached or running · will suspend in (10|9) min if idle$/,
  );
  await activity(page)
    .getByText(/^checked .* · last active /)
    .waitFor({ timeout: 15_000 });
  await screenshots(page, '30-activity-idle');
});

test('while a terminal is attached the activity line says so, live', async () => {
  const { page, context } = person;
  await page.getByRole('button', { name: 'New terminal' }).click();
  await page.waitForURL('**/sessions/*');
  sessionPath = new URL(page.url()).pathname;
  await page.locator('.terminal-status[data-status="connected"]').waitFor({ timeout: 15_000 });
  await typeInto(page, 'echo before-sleep-$((6*7))\n');
  await waitForScreen(page, /^before-sleep-42$/m, 'the echo');

  const machinePage = await context.newPage();
  await machinePage.goto(MACHINE);
  const line = activity(machinePage);
  await waitForActivity(
    machinePage,
    /^Awake: 1 terminal attached · will suspend 10 min after that ends$/,
  );
  assert.equal(await line.getAttribute('data-busy'), 'true');
  await screenshots(machinePage, '31-activity-terminal');

  // Closing the terminal tab is seen without a reload: the page's own polling brings it.
  await page.goto('about:blank');
  await waitForActivity(
    machinePage,
    /^Awake: nothing attached or running · will suspend in (10|9) min if idle$/,
  );
  await machinePage.close();
});

test('Suspend turns the badge to suspended and the activity line says how it wakes', async () => {
  const { page } = person;
  await page.goto(MACHINE);
  await badge(page, 'started').waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Suspend', exact: true }).click();
  await badge(page, 'suspended').waitFor({ timeout: 30_000 });
  await waitForActivity(
    page,
    /^Suspended — wakes when you open a terminal or its URL · will stop in (1 h|59 min) unless something wakes it$/,
  );
  // Suspended machines keep their sessions, but reading the list would wake the machine.
  await page
    .getByRole('heading', { name: 'Terminals are listed while the machine runs' })
    .waitFor({ timeout: 15_000 });
  assert.deepEqual(
    (await page.getByRole('button', { name: /^(Start|Stop|Suspend)$/ }).allTextContents()).sort(),
    ['Start', 'Stop'],
  );
  await screenshots(page, '32-machine-suspended');
});

test('the terminal of a suspended machine shows it waking, then the same session', async () => {
  const { page } = person;
  await page.goto(sessionPath);
  await page.locator('.terminal-status[data-status="connected"]').waitFor({ timeout: 30_000 });
  const statuses = await seen(page, 'status');
  assert.ok(statuses.includes('waking'), `statuses: ${statuses.join(' → ')}`);
  assert.ok(statuses.indexOf('waking') < statuses.lastIndexOf('connected'));
  await waitForScreen(page, /^before-sleep-42$/m, 'the output from before the suspend');
  await typeInto(page, 'echo awake-again-$((40+2))\n');
  await waitForScreen(page, /^awake-again-42$/m, 'a command after the wake');
  await screenshot(page, '33-terminal-after-wake');
});

test('Stop shows stopping then stopped, and Start brings it back to started', async () => {
  const { page } = person;
  await page.goto(MACHINE);
  await badge(page, 'started').waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await badge(page, 'stopped').waitFor({ timeout: 30_000 });
  const stopping = await seen(page, 'badge');
  assert.deepEqual(stopping.slice(-3), ['started', 'stopping', 'stopped'], stopping.join(' → '));
  await waitForActivity(
    page,
    /^Stopped — starts when you open a terminal or its URL, or press Start$/,
  );
  await page.getByRole('heading', { name: 'No terminal sessions' }).waitFor({ timeout: 15_000 });
  await screenshots(page, '34-machine-stopped');

  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await badge(page, 'started').waitFor({ timeout: 60_000 });
  const starting = await seen(page, 'badge');
  assert.deepEqual(starting.slice(-2), ['starting', 'started'], starting.join(' → '));
  await activity(page)
    .getByText(/^Awake/)
    .waitFor();
});

test('the timeline lists the transitions newest first with their causes in words', async () => {
  const { page } = person;
  const timeline = page.locator('ol.timeline > li');
  // Newest first: the start just asked for, and the machine getting there.
  await timeline.first().getByText('started', { exact: true }).waitFor({ timeout: 15_000 });
  const rows = (await timeline.allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
  const find = (pattern: RegExp) =>
    assert.ok(
      rows.some((row) => pattern.test(row)),
      `no timeline row matches ${pattern}:\n${rows.join('\n')}`,
    );
  find(/^Created created by Tess/);
  find(/^Suspend requested user by Tess/);
  find(/^started → suspended user by Tess/);
  find(/^Woken up wake for Tess/);
  find(/^suspended → started wake for Tess/);
  find(/^Stop requested user by Tess/);
  find(/^started → stopping user by Tess/);
  find(/^stopping → stopped user by Tess/);
  find(/^Start requested user by Tess/);
  find(/^stopped → starting user by Tess/);
  assert.ok(
    rows.indexOf(rows.find((row) => /^Stop requested/.test(row)) ?? '') <
      rows.indexOf(rows.find((row) => /^Suspend requested/.test(row)) ?? ''),
    'newer events come first',
  );
  await page.getByRole('heading', { name: 'Timeline' }).scrollIntoViewIfNeeded();
  await screenshots(page, '35-timeline');
});

test("a stopped machine's terminal shows it waking, says the session ended, and a new one gets a prompt", async () => {
  const { page } = person;
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await badge(page, 'stopped').waitFor({ timeout: 30_000 });
  await page.goto(sessionPath);
  const status = page.locator('.terminal-status');
  await status.and(page.locator('[data-status="closed"]')).waitFor({ timeout: 30_000 });
  const statuses = await seen(page, 'status');
  assert.ok(statuses.includes('waking'), `statuses: ${statuses.join(' → ')}`);
  await status
    .getByText(/^This terminal session no longer exists \(it was ended, or its machine stopped\)/)
    .waitFor();
  await screenshots(page, '36-terminal-session-gone');
  await status.getByRole('button', { name: 'New terminal' }).click();
  await page.waitForURL((url) => url.pathname !== sessionPath && /\/sessions\//.test(url.pathname));
  await page.locator('.terminal-status[data-status="connected"]').waitFor({ timeout: 30_000 });
  await waitForScreen(page, /[#$] ?$/m, 'a shell prompt');
  await typeInto(page, 'echo fresh-$((6*7))\n');
  await waitForScreen(page, /^fresh-42$/m, 'output in the new session');
});

test('a machine nobody uses is suspended, then stopped, by idling, and the page says why', async () => {
  const { page } = person;
  await api('POST', '/machines', { name: 'nap' });
  await page.goto('/orgs/awake/machines/nap');
  // Suspended 2 s after starting and stopped 3 s later: a steady page polls every 5 s, so
  // it may show only the end; the timeline has every step.
  await badge(page, 'stopped').waitFor({ timeout: 60_000 });
  await waitForActivity(page, /^Stopped — starts when you open a terminal or its URL/);
  const timeline = page.locator('ol.timeline > li');
  await timeline.first().getByText('stopped', { exact: true }).waitFor({ timeout: 15_000 });
  const rows = (await timeline.allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
  for (const pattern of [
    /^Suspend after being idle idle/,
    /^started → suspended idle/,
    /^Stop after being idle idle/,
    /→ stopped idle/,
  ]) {
    assert.ok(
      rows.some((row) => pattern.test(row)),
      `no timeline row matches ${pattern}:\n${rows.join('\n')}`,
    );
  }
  const idled = rows.filter((row) => / idle /.test(row));
  assert.ok(
    idled.every((row) => !/ (by|for) /.test(row)),
    `idling has no actor: ${idled}`,
  );
  await screenshots(page, '37-idled-timeline');
});

test('the machine and terminal pages threw and logged nothing', () => {
  assert.deepEqual(person.problems, []);
});
