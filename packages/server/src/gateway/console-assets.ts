// The web console (packages/console/dist) on the main origin: hashed files under /assets/
// are immutable, every other GET outside the API is the single-page app's index.html, which
// must never be cached (it names the current asset hashes).
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const SERVER_PATHS = /^\/(api\/|healthz$|readyz$|metrics$)/;

export function registerConsoleAssets(app: FastifyInstance, dir: string): void {
  let index: Promise<string | null> | null = null;
  const readIndex = () => {
    index ??= readFile(join(dir, 'index.html'), 'utf8').catch(() => null);
    return index;
  };

  app.route({
    method: ['GET', 'HEAD'],
    url: '/*',
    schema: { hide: true },
    handler: async (request, reply) => {
      let path: string;
      try {
        path = decodeURIComponent(request.url.split('?')[0] ?? '/');
      } catch {
        return reply.status(400).send({
          error: { code: 'invalid_input', message: 'url: is not valid percent-encoding' },
        });
      }
      if (SERVER_PATHS.test(path))
        return reply.status(404).send({
          error: { code: 'not_found', message: `There is no ${request.method} ${path}.` },
        });
      const file = normalize(join(dir, path));
      if (path !== '/' && file.startsWith(dir) && !path.includes('\0')) {
        const info = await stat(file).catch(() => null);
        if (info?.isFile()) {
          reply
            .type(TYPES[extname(file)] ?? 'application/octet-stream')
            .header('content-length', info.size)
            .header(
              'cache-control',
              path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
            );
          return reply.send(createReadStream(file));
        }
        if (path.startsWith('/assets/'))
          return reply
            .status(404)
            .send({ error: { code: 'not_found', message: `There is no asset ${path}.` } });
      }
      const html = await readIndex();
      if (html === null)
        return reply.status(404).send({
          error: {
            code: 'console_not_built',
            message: 'The web console is not built; run `npm run build`.',
          },
        });
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html);
    },
  });
}
