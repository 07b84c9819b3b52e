import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import {
  createStartedMachine,
  type Person,
  type Stack,
  screenRows,
  screenshot,
  screenText,
  signUpOwner,
  startStack,
  typeInto,
  waitForScreen,
} from './harness.js';

// Copy and paste in the browser terminal through the system clipboard (the context has the
// clipboard permissions), with the shortcuts the console documents: Ctrl+Shift+V pastes into
// the shell, Ctrl+Shift+C copies xterm's selection. Then every main signed-in page at phone
// and laptop widths: the header keeps the org name and role readable and every section
// reachable, and nothing is wider than the screen. Screenshots 4x-*.png.

const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 800 };
const ORG_LABEL = 'Clipboard Org (owner)';

let stack: Stack;
let person: Person;
let sessionPath = '';

before(async () => {
  // Its own host lane, so it can run beside the other machine e2e files.
  stack = await startStack({ machines: true, lane: 34 });
  person = await stack.newPerson(LAPTOP);
  await signUpOwner(person, 'Cleo', { slug: 'clip', name: 'Clipboard Org' });
  await createStartedMachine(person, 'clip', 'box');
  const session = await person.api('POST', '/api/v1/orgs/clip/machines/box/sessions', {
    cols: 100,
    rows: 30,
  });
  sessionPath = `/orgs/clip/machines/box/sessions/${session.id}`;
});

after(async () => {
  await stack?.stop();
});

const readClipboard = (page: Page) => page.evaluate(() => navigator.clipboard.readText());

test('text on the clipboard is pasted into the shell with Ctrl+Shift+V', async () => {
  const { page } = person;
  await page.goto(sessionPath);
  await page.locator('.terminal-status[data-status="connected"]').waitFor({ timeout: 15_000 });
  await waitForScreen(page, /[$#] ?$/m, 'a prompt');
  await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((20+5))'));
  await page.locator('.xterm-helper-textarea').focus();
  await page.keyboard.press('Control+Shift+V');
  // Only the paste can have put it there, and with no newline in it the line waits for Enter.
  await waitForScreen(page, /echo pasted-\$\(\(20\+5\)\)$/m, 'the pasted command line');
  assert.doesNotMatch(await screenText(page), /^pasted-25$/m);
  await page.keyboard.press('Enter');
  await waitForScreen(page, /^pasted-25$/m, 'the pasted command’s output');
});

test('a selected line of output is copied to the clipboard with Ctrl+Shift+C, without reaching the shell or the browser', async () => {
  const { page } = person;
  await typeInto(page, 'echo copied-$((6*7))-ok\n');
  await waitForScreen(page, /^copied-42-ok$/m, 'the output to copy');
  await page.evaluate(() => navigator.clipboard.writeText('not copied yet'));
  const rows = await screenRows(page);
  const index = rows.indexOf('copied-42-ok');
  const row = page.locator('.xterm-rows > div').nth(index);
  const box = await row.boundingBox();
  assert.ok(box, 'the output row is on screen');
  // A double click selects the word under the pointer (hyphens do not split xterm's words).
  await page.mouse.dblclick(box.x + 12, box.y + box.height / 2);
  await page.evaluate(() => {
    const seen: boolean[] = [];
    Object.assign(window, { copyKeyPrevented: seen });
    window.addEventListener('keydown', (event) => {
      if (event.code === 'KeyC') seen.push(event.defaultPrevented);
    });
  });
  const before = await screenText(page);
  await page.keyboard.press('Control+Shift+C');
  const deadline = Date.now() + 5_000;
  while ((await readClipboard(page)) !== 'copied-42-ok' && Date.now() < deadline) {
    await page.waitForTimeout(50);
  }
  assert.equal(await readClipboard(page), 'copied-42-ok');
  assert.deepEqual(
    await page.evaluate(
      () => (window as unknown as { copyKeyPrevented: boolean[] }).copyKeyPrevented,
    ),
    [true],
    'the key press is taken from the browser (Chrome opens DevTools’ picker on Ctrl+Shift+C)',
  );
  await page.waitForTimeout(300);
  assert.equal(await screenText(page), before, 'the shell received nothing');
  await screenshot(page, '40-terminal-copied');
});

test('without the async clipboard API (a plain-http origin) Ctrl+Shift+C still copies the selection', async () => {
  const { page } = person;
  await typeInto(page, 'echo fallback-$((7*6))-ok\n');
  await waitForScreen(page, /^fallback-42-ok$/m, 'the output to copy');
  await page.evaluate(async () => {
    await navigator.clipboard.writeText('not copied yet');
    // Keep a handle to read the result with, then hide the API as an insecure origin would.
    Object.assign(window, { hiddenClipboard: navigator.clipboard });
    Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true });
  });
  const rows = await screenRows(page);
  const box = await page
    .locator('.xterm-rows > div')
    .nth(rows.indexOf('fallback-42-ok'))
    .boundingBox();
  assert.ok(box, 'the output row is on screen');
  await page.mouse.dblclick(box.x + 12, box.y + box.height / 2);
  await page.keyboard.press('Control+Shift+C');
  const copied = await page.evaluate(async () => {
    const saved = (window as unknown as { hiddenClipboard: Clipboard }).hiddenClipboard;
    const text = await saved.readText();
    Object.defineProperty(navigator, 'clipboard', { value: saved, configurable: true });
    return text;
  });
  assert.equal(copied, 'fallback-42-ok');
});

test('plain Ctrl+C still interrupts the program in the terminal', async () => {
  const { page } = person;
  await typeInto(page, 'sleep 30 && echo slept\n');
  await page.waitForTimeout(300);
  await page.keyboard.press('Control+C');
  await typeInto(page, 'echo interrupted-$((1+1))\n');
  await waitForScreen(page, /^interrupted-2$/m, 'the prompt back after Ctrl+C');
  assert.doesNotMatch(await screenText(page), /^slept$/m);
});

interface HeaderCheck {
  overflow: number;
  orgLabel: string;
  orgTitle: string;
  orgTextWidth: number;
  orgRoom: number;
  offscreen: string[];
}

/** What a person sees of the header: the org's label fits its select, sections are on screen. */
async function checkHeader(page: Page): Promise<HeaderCheck> {
  return page.evaluate(() => {
    const select = document.querySelector('.org-switcher select') as HTMLSelectElement;
    const style = getComputedStyle(select);
    const context = document.createElement('canvas').getContext('2d') as CanvasRenderingContext2D;
    context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const label = select.selectedOptions[0]?.text ?? '';
    // Chromium draws the select's arrow inside the padding box: about 20 px of it.
    const room =
      select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
    const offscreen = Array.from(
      document.querySelectorAll('.topbar a, .topbar button, .topbar select'),
    )
      .filter((element) => {
        const rect = element.getBoundingClientRect();
        return rect.left < 0 || rect.right > window.innerWidth + 0.5 || rect.width === 0;
      })
      .map((element) => element.textContent?.trim() || element.tagName);
    return {
      overflow: document.documentElement.scrollWidth - window.innerWidth,
      orgLabel: label,
      orgTitle: select.title,
      orgTextWidth: Math.ceil(context.measureText(label).width),
      orgRoom: Math.floor(room),
      offscreen,
    };
  });
}

const PAGES: Array<{ name: string; path: string; ready: (page: Page) => Promise<void> }> = [
  {
    name: '41-machines',
    path: '/orgs/clip',
    ready: (page) => page.locator('tr[data-machine="box"]').waitFor(),
  },
  {
    name: '42-new-machine',
    path: '/orgs/clip/new-machine',
    ready: (page) => page.getByRole('heading', { name: 'New machine' }).waitFor(),
  },
  {
    name: '43-machine',
    path: '/orgs/clip/machines/box',
    ready: (page) => page.getByRole('heading', { name: 'Timeline' }).waitFor(),
  },
  {
    name: '44-terminal',
    path: '',
    ready: async (page) => {
      await page.locator('.terminal-status[data-status="connected"]').waitFor();
      await waitForScreen(page, /^interrupted-2$/m, 'the restored screen');
      // The terminal fills the screen below the header, and no further.
      const bottom = await page.evaluate(() => {
        const frame = document.querySelector('.terminal-frame') as HTMLElement;
        return frame.getBoundingClientRect().bottom - window.innerHeight;
      });
      assert.ok(bottom <= 0, `the terminal reaches ${bottom} px below the screen`);
    },
  },
  {
    name: '45-members',
    path: '/orgs/clip/members',
    ready: (page) => page.getByRole('heading', { name: 'Members' }).waitFor(),
  },
  {
    name: '46-audit',
    path: '/orgs/clip/audit',
    ready: (page) => page.getByRole('table').waitFor(),
  },
  {
    name: '47-settings',
    path: '/orgs/clip/settings',
    ready: (page) => page.getByRole('heading', { name: 'Settings' }).waitFor(),
  },
  {
    name: '48-account',
    path: '/account',
    ready: (page) => page.getByRole('heading', { name: 'Account' }).waitFor(),
  },
];

for (const [width, viewport] of [
  ['phone', PHONE],
  ['laptop', LAPTOP],
] as const) {
  test(`at ${viewport.width} px every main page shows the org and role in full and every section`, async () => {
    const { page } = person;
    await page.setViewportSize(viewport);
    for (const each of PAGES) {
      await page.goto(each.path || sessionPath);
      await each.ready(page);
      await page.locator('.state-loading').first().waitFor({ state: 'detached' });
      await screenshot(page, `${each.name}-${width}`);
      const header = await checkHeader(page);
      const where = `${each.name} at ${viewport.width} px: ${JSON.stringify(header)}`;
      assert.equal(header.orgLabel, ORG_LABEL, where);
      assert.ok(header.orgTextWidth <= header.orgRoom, `the org label is cut: ${where}`);
      assert.deepEqual(header.offscreen, [], `header items off screen: ${where}`);
      assert.ok(header.overflow <= 0, `the page is wider than the screen: ${where}`);
      assert.equal(header.orgTitle, ORG_LABEL, `a longer name would be in the tooltip: ${where}`);
    }
    await page.setViewportSize(LAPTOP);
  });
}

test('the signed-out pages fit a phone', async () => {
  const visitor = await stack.newPerson(PHONE);
  for (const [name, path, heading] of [
    ['49-sign-in-phone', '/signin', 'Sign in'],
    ['49-sign-up-phone', '/signup', 'Create your account'],
  ] as const) {
    await visitor.page.goto(path);
    await visitor.page.getByRole('heading', { name: heading }).waitFor();
    await screenshot(visitor.page, name);
    const overflow = await visitor.page.evaluate(
      () => document.documentElement.scrollWidth - window.innerWidth,
    );
    assert.ok(overflow <= 0, `${path} is ${overflow} px wider than the phone`);
  }
  await visitor.context.close();
  assert.deepEqual(visitor.problems, []);
});

test('the pages threw and logged nothing', () => {
  assert.deepEqual(person.problems, []);
});
