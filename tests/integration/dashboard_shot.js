// Opens durod's dashboard in headless Chromium (Debian's chromium, driven by npm's
// playwright-core), waits for live figures, checks them and saves a screenshot.
// Usage: NODE_PATH=... node dashboard_shot.js URL PNG
'use strict';
const { chromium } = require('playwright-core');

(async () => {
  const [url, png] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  // Three refreshes: rates need two samples.
  await page.waitForFunction(() => Number(document.body.dataset.ticks || 0) >= 3, null, { timeout: 20000 });
  const figures = await page.evaluate(() => ({
    status: document.getElementById('status').textContent,
    rps: document.getElementById('v-rps').textContent,
    conns: document.getElementById('v-conns').textContent,
    objects: document.getElementById('v-objs').textContent,
    latency: document.getElementById('v-lat').textContent,
    rows: document.querySelectorAll('#cores tbody tr').length,
    classes: Array.from(document.querySelectorAll('#classes tbody tr'),
                        (tr) => Array.from(tr.children, (td) => td.textContent)),
    // cluster mode only: the boxes as this box sees them
    cluster: document.getElementById('cluster-card').hidden ? null : {
      head: document.getElementById('cluster-head').textContent,
      boxes: Array.from(document.querySelectorAll('#cluster-boxes tbody tr'),
                        (tr) => Array.from(tr.children, (td) => td.textContent)),
      moves: document.getElementById('cluster-moves').textContent,
    },
  }));
  await page.screenshot({ path: png, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ figures, errors }));
})().catch((e) => { console.error(e); process.exit(1); });
