// The dashboard's SQL view in headless Chromium (Debian's chromium, driven by npm's
// playwright-core): picks a binding and name, runs each query given, and reports the
// columns, rows or error the page shows for each; saves a screenshot of the last.
// Usage: NODE_PATH=... node dashboard_sql.js URL PNG BINDING NAME QUERY...
'use strict';
const { chromium } = require('playwright-core');

(async () => {
  const [url, png, binding, name, ...queries] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('#sql-card:not([hidden])', { timeout: 20000 });
  await page.selectOption('#sql-binding', binding);
  await page.fill('#sql-name', name);
  const results = [];
  for (const q of queries) {
    await page.fill('#sql-text', q);
    await page.click('#sql-run');
    // Done once the "running…" note is gone and a table head or an error shows.
    await page.waitForFunction(() => document.getElementById('sql-info').textContent !== 'running…' &&
      (document.querySelector('#sql-result thead tr') || document.getElementById('sql-error').textContent),
      null, { timeout: 20000 });
    results.push(await page.evaluate(() => ({
      columns: Array.from(document.querySelectorAll('#sql-result thead th'), (th) => th.textContent),
      rows: Array.from(document.querySelectorAll('#sql-result tbody tr'),
                       (tr) => Array.from(tr.children, (td) => td.textContent)),
      error: document.getElementById('sql-error').textContent,
      info: document.getElementById('sql-info').textContent,
    })));
  }
  await page.screenshot({ path: png, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ results, errors }));
})().catch((e) => { console.error(e); process.exit(1); });
