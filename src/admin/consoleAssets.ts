// The console's files: its page, script and style (console/ in the package)
// and the charting library (uPlot, from node_modules). Served as they are,
// with no build step; every response carries a Content-Security-Policy that
// allows scripts and styles from this origin only, so data shown in the page
// can never run as code.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const require_ = createRequire(import.meta.url);
// src/admin/ and dist/admin/ are both two levels below the package root.
const here = (name: string) => fileURLToPath(new URL(`../../console/${name}`, import.meta.url));

const ASSETS: Record<string, { file: () => string; type: string }> = {
  '/console': { file: () => here('index.html'), type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: () => here('app.js'), type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: () => here('app.css'), type: 'text/css; charset=utf-8' },
  '/console/uplot.js': {
    file: () => require_.resolve('uplot/dist/uPlot.iife.min.js'),
    type: 'text/javascript; charset=utf-8',
  },
  '/console/uplot.css': { file: () => require_.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function isConsoleAsset(url: string): boolean {
  const path = url.split('?')[0]!;
  return path === '/' || path === '/console/' || Object.hasOwn(ASSETS, path);
}

export function consoleRoutes(app: FastifyInstance): void {
  const cache = new Map<string, Buffer>();
  for (const [path, a] of Object.entries(ASSETS)) {
    app.get(path, async (_req, reply) => {
      let body = cache.get(path);
      if (!body) cache.set(path, (body = readFileSync(a.file())));
      return reply
        .header('content-type', a.type)
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('cache-control', 'no-cache')
        .send(body);
    });
  }
  app.get('/', async (_req, reply) => reply.redirect('/console'));
  // (a typed or bookmarked trailing slash reaches the page too, not a 401 of the API)
  app.get('/console/', async (_req, reply) => reply.redirect('/console'));
}
