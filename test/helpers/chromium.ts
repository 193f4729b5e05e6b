// Debian's Chromium driven by playwright-core, for the browser tests: the flags this closed network needs, a
// screenshot folder per test, and pages that record every console error, console warning and page error (a
// test fails on any it did not expect).
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContextOptions, chromium, type Page } from 'playwright-core';
import type { Test } from 'tap';

export const CHROMIUM = '/usr/bin/chromium';
/** a tap `skip` value: false where Chromium is installed */
export const NEEDS_CHROMIUM = existsSync(CHROMIUM) ? false : `needs ${CHROMIUM} (apt-get install chromium)`;

export interface Chromium {
  browser: Browser;
  /** what went wrong in any page so far: console errors and warnings, page errors */
  problems: string[];
  /** a page in a context of its own (no cookies shared with other pages) */
  newPage(options?: BrowserContextOptions, onConsoleError?: (text: string, url: string) => boolean): Promise<Page>;
  /** a full-page screenshot, numbered in order, into the test's folder */
  screenshot(page: Page, name: string): Promise<void>;
}

export async function launchChromium(t: Test, screenshots: string): Promise<Chromium> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // without the background-networking flags Chromium keeps dialling out, and this machine refuses every call
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(() => browser.close());
  const dir = join(tmpdir(), screenshots);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  t.comment(`screenshots in ${dir}`);
  const problems: string[] = [];
  let shot = 0;
  return {
    browser,
    problems,
    async newPage(options = {}, onConsoleError) {
      const p = await (await browser.newContext({ viewport: { width: 900, height: 760 }, ...options })).newPage();
      p.on('pageerror', (e) => problems.push(`page error: ${String(e)}`));
      p.on('console', (m) => {
        if (m.type() !== 'error' && m.type() !== 'warning') return;
        if (onConsoleError?.(m.text(), m.location().url)) return;
        problems.push(`console ${m.type()} on ${p.url()}: ${m.text()}`);
      });
      // a strict CSP (no unsafe-eval) refuses Playwright's string predicates: wait on elements and URLs only
      p.setDefaultTimeout(60_000);
      return p;
    },
    async screenshot(page, name) {
      await page.screenshot({ path: join(dir, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
    },
  };
}
