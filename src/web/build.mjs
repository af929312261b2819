// Bundles the browser code (src/web/) with esbuild into dist/web/, the files the node serves
// (src/gateway/static-files.ts), and fails when the widget's gzipped size passes its budget.
// Run by `npm run build` (so by `npm start` and `npm test` too); no network, no CDN.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

/** The widget loads on every shop page: its gzipped size must stay below this (issue #15). */
export const WIDGET_GZIP_BUDGET_BYTES = 30 * 1024;

const root = dirname(fileURLToPath(import.meta.url));
const out = join(root, '..', '..', 'dist', 'web');
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, format: 'iife', target: 'es2020', legalComments: 'none' };
await build({ ...common, entryPoints: [join(root, 'widget', 'main.ts')], outfile: join(out, 'widget.js') });
await build({ ...common, entryPoints: [join(root, 'console', 'main.ts')], outfile: join(out, 'console.js') });
copyFileSync(join(root, 'console', 'console.css'), join(out, 'console.css'));
copyFileSync(join(root, 'console', 'console.html'), join(out, 'console.html'));
copyFileSync(join(root, 'demo.html'), join(out, 'demo.html'));

const sizes = {};
for (const f of ['widget.js', 'console.js', 'console.css']) {
  const raw = readFileSync(join(out, f));
  sizes[f] = { bytes: raw.length, gzipBytes: gzipSync(raw, { level: 9 }).length };
}
writeFileSync(join(out, 'sizes.json'), `${JSON.stringify(sizes, null, 2)}\n`);
const w = sizes['widget.js'].gzipBytes;
console.log(
  `web: widget.js ${sizes['widget.js'].bytes} B (${w} B gzipped, budget ${WIDGET_GZIP_BUDGET_BYTES}); ` +
    `console.js ${sizes['console.js'].bytes} B (${sizes['console.js'].gzipBytes} B gzipped)`,
);
if (w > WIDGET_GZIP_BUDGET_BYTES) {
  console.error(`web: widget.js is ${w} B gzipped, over its budget of ${WIDGET_GZIP_BUDGET_BYTES} B`);
  process.exit(1);
}
