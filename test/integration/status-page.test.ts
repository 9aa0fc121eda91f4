/**
 * The status page in a real browser: headless Chromium (Debian `chromium`)
 * driven by playwright-core loads GET / from an AdminServer on loopback whose
 * source is a fake with pools in every state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { AdminServer } from '../../src/observability/admin.ts';
import { FakeSource } from '../support/admin-fake.ts';
import { ensureChromium, launchChromium, type Browser } from '../support/browser.ts';

/** What the page shows for one address. */
interface Shown {
  classes: string[];
  state: string;
  serve: string;
  text: string;
  stateColour: string;
}

/**
 * What the page shows for one member. The page re-renders itself every
 * refresh; an element swapped out between locating and reading has no computed
 * style (''), so such a read is taken again (bounded).
 */
async function shown(page: Page, pool: string, address: string): Promise<Shown> {
  let s = await shownOnce(page, pool, address);
  for (let i = 0; i < 20 && !/\d/.test(s.stateColour); i++) s = await shownOnce(page, pool, address);
  return s;
}

async function shownOnce(page: Page, pool: string, address: string): Promise<Shown> {
  const li = page.locator(`section[data-pool="${pool}"] li.member[data-address="${address}"]`);
  expect(await li.count(), `${pool} ${address} on the page`).toBe(1);
  return li.evaluate((el) => {
    const state = el.querySelector('.state')!;
    return {
      classes: [...el.classList],
      state: state.textContent ?? '',
      serve: el.querySelector('.serve')?.textContent ?? '',
      text: el.textContent ?? '',
      // Runs in the page; the test type-checks without the DOM lib, hence the cast.
      stateColour: (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(state).backgroundColor,
    };
  });
}

/** The little of the DOM the page functions use (the tests type-check without the DOM lib). */
interface InPage {
  innerWidth: number;
  document: {
    documentElement: { scrollWidth: number };
    querySelector(selector: string): { classList: { contains(c: string): boolean } } | null;
  };
}

/** rgb(r, g, b) → [r, g, b] */
const rgb = (css: string): number[] => (css.match(/\d+/g) ?? []).slice(0, 3).map(Number);

describe.skipIf(!ensureChromium())('status page in headless Chromium', () => {
  let src: FakeSource;
  let admin: AdminServer;
  let url: string;
  let browser: Browser;
  let page: Page;
  let tmp: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rrdns-status-page-'));
    src = new FakeSource();
    // A short refresh so the update test waits little; the waits below are bounded, never asserted on.
    admin = new AdminServer(src, { host: '127.0.0.1', port: 0, refreshMs: 300 });
    const { port } = await admin.start();
    url = `http://127.0.0.1:${port}/`;
    browser = await launchChromium({ width: 412, height: 900 }); // a phone
    page = await browser.context.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await admin?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('shows every pool and address with its state in text and colour', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const res = await page.goto(url, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    expect(await page.title()).toBe('rrdns status');

    for (const p of src.snapshot) {
      const pool = `${p.name} ${p.type}`;
      const heading = await page.locator(`section[data-pool="${pool}"] h2`).textContent();
      expect(heading).toContain(p.name);
      for (const m of p.members) {
        const s = await shown(page, pool, m.address);
        expect(s.state, `${pool} ${m.address}`).toBe(m.health);
        expect(s.classes, `${pool} ${m.address}`).toContain(`state-${m.health}`);
        expect(s.classes).toContain(m.served ? 'served' : 'not-served');
        expect(s.serve).toBe(m.served ? 'served' : 'not served');
        if (m.override) expect(s.text).toContain(m.override);
        if (m.role === 'standby') expect(s.text).toContain('standby');
        if (m.lastResult) expect(s.text).toContain(m.lastResult);
      }
    }

    // The colours tell the states apart at a glance: green up, red down, grey unknown.
    const [ur, ug] = rgb((await shown(page, 'www.example.test. A', '192.0.2.10')).stateColour);
    const [dr, dg] = rgb((await shown(page, 'www.example.test. A', '192.0.2.11')).stateColour);
    const unknown = rgb((await shown(page, 'www.example.test. A', '192.0.2.12')).stateColour);
    expect(ug!).toBeGreaterThan(ur!);
    expect(dr!).toBeGreaterThan(dg!);
    expect(Math.max(...unknown) - Math.min(...unknown)).toBeLessThan(40);

    // Zone data is text, never markup.
    const hostile = await shown(page, 'api.example.test. A', '192.0.2.20');
    expect(hostile.text).toContain('body did not match "<b>ok</b>" & more');
    expect(await page.locator('li.member b').count()).toBe(0);

    // Pool modes: the backup pool says so.
    expect(await page.locator('section[data-pool="api.example.test. A"]').getAttribute('class')).toContain('mode-warn');
    expect(await page.locator('section[data-pool="api.example.test. A"] .mode').textContent()).toContain('serving standby');

    // Readable on a phone: nothing wider than the screen.
    const overflow = await page.evaluate(() => {
      const w = globalThis as unknown as InPage;
      return w.document.documentElement.scrollWidth - w.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);

    const shot = process.env.RRDNS_SCREENSHOT ?? path.join(tmp, 'status.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.readFileSync(shot).subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(errors).toEqual([]);
  });

  it('draws each member\'s balance: three sparklines with a line and the current value, inside the page width', async () => {
    await page.goto(url, { waitUntil: 'load' });
    for (const p of src.snapshot) {
      for (const m of p.members) {
        // Found and measured in one evaluation: the page swaps in a fresh copy of its live section every few
        // seconds, and an element a locator resolved just before a swap is measured detached (a zero box).
        const selector = `section[data-pool="${p.name} ${p.type}"] li.member[data-address="${m.address}"]`;
        const charts = await page.evaluate((sel) => {
          interface Node {
            className: string;
            textContent: string | null;
            querySelector(s: string): Node | null;
            querySelectorAll(s: string): ArrayLike<Node>;
            getBoundingClientRect(): { width: number; height: number };
          }
          const el = (globalThis as unknown as { document: Node }).document.querySelector(sel);
          return Array.from(el?.querySelectorAll('.spark') ?? []).map((s) => {
            const svg = s.querySelector('svg')!;
            const box = svg.getBoundingClientRect();
            return { kind: s.className, width: box.width, height: box.height, drawn: svg.querySelector('path') !== null, now: s.querySelector('.now')?.textContent ?? '' };
          });
        }, selector);
        expect(charts.map((c) => c.kind), `${p.name} ${m.address}`).toEqual(['spark spark-first', 'spark spark-weight', 'spark spark-load']);
        for (const c of charts) expect(c.width * c.height).toBeGreaterThan(0);
        // Weights are always known; the first share once the member had answers over an interval.
        expect(charts[1]!.drawn).toBe(true);
        expect(charts[1]!.now).toBe(String(m.effectiveWeight));
        expect(charts[0]!.drawn).toBe(true);
      }
    }
    const overflow = await page.evaluate(() => {
      const w = globalThis as unknown as InPage;
      return w.document.documentElement.scrollWidth - w.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
  });

  it('follows the source: a flipped state shows up without a reload', async () => {
    await page.goto(url, { waitUntil: 'load' });
    expect((await shown(page, 'www.example.test. A', '192.0.2.11')).state).toBe('down');
    expect(await page.locator('.ready').textContent()).toBe('not ready');

    const back = src.member('www.example.test.', 'A', '192.0.2.11');
    Object.assign(back, { health: 'up', served: true, lastResult: 'HTTP 204', lastOk: true, consecutiveOk: 2, consecutiveFail: 0 });
    const gone = src.member('www.example.test.', 'A', '192.0.2.10');
    Object.assign(gone, { health: 'down', served: false, lastResult: 'timeout after 2000 ms', lastOk: false, consecutiveOk: 0, consecutiveFail: 3 });
    src.isReady = true;

    // Bounded wait for the page's own refresh.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as InPage).document.querySelector('li.member[data-address="192.0.2.11"]')?.classList.contains('state-up') === true,
      undefined,
      { timeout: 15_000 },
    );
    const up = await shown(page, 'www.example.test. A', '192.0.2.11');
    expect(up.state).toBe('up');
    expect(up.classes).toContain('served');
    expect(up.text).toContain('HTTP 204');
    const down = await shown(page, 'www.example.test. A', '192.0.2.10');
    expect(down.state).toBe('down');
    expect(down.classes).toContain('not-served');
    expect(down.text).toContain('timeout after 2000 ms');
    expect(await page.locator('.ready').textContent()).toBe('ready');
  });

  it('says so when the server goes away, keeping the last state', async () => {
    await page.goto(url, { waitUntil: 'load' });
    await admin.close();
    await page.waitForSelector('#conn:not([hidden])', { timeout: 15_000 });
    expect(await page.locator('#conn').textContent()).toContain('Cannot reach rrdns');
    expect(await page.locator('li.member').count()).toBe(src.snapshot.reduce((n, p) => n + p.members.length, 0));
  });
});
