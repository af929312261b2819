/**
 * The built browser files (src/web/build.mjs → dist/web/): the widget stays within its gzipped size
 * budget (issue #15: under 30 KB) and neither bundle loads anything from another host at run time.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { DEFAULT_WEB_DIR } from '../../src/gateway/static-files.js';

const WIDGET_GZIP_BUDGET_BYTES = 30 * 1024;

test('web bundle - the widget is under 30 KB gzipped', () => {
  const gz = gzipSync(readFileSync(`${DEFAULT_WEB_DIR}widget.js`), { level: 9 }).length;
  assert.ok(gz < WIDGET_GZIP_BUDGET_BYTES, `widget.js is ${gz} B gzipped`);
});

test('web bundle - no CDN: the bundles and pages name no script, style or font host', () => {
  for (const f of ['widget.js', 'console.js', 'console.html', 'console.css', 'demo.html']) {
    const text = readFileSync(`${DEFAULT_WEB_DIR}${f}`, 'utf8');
    const remote = text.match(
      /(src|href)\s*=\s*["']https?:\/\/[^"']+|@import\s+url\(["']?https?:|from\s*["']https?:/g,
    );
    assert.equal(remote, null, `${f} loads ${String(remote)}`);
  }
});
