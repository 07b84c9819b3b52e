import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStats } from '../db/database.js';

/**
 * Prometheus figures: requests by route and status, latency, database pool, machine-URL
 * requests by the relay path that carried them, process.
 */
export function registerMetrics(
  app: FastifyInstance,
  poolStats: () => PoolStats,
  relayed: () => { relay: number; native: number },
): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'snapvm_' });
  new Counter({
    name: 'snapvm_gateway_relayed_requests_total',
    help: 'Machine-URL requests relayed without the full gateway path, by path: relay (app-relay.ts) or native (its native data path)',
    labelNames: ['path'],
    registers: [registry],
    collect() {
      const counts = relayed();
      this.reset();
      this.inc({ path: 'relay' }, counts.relay);
      this.inc({ path: 'native' }, counts.native);
    },
  });
  const requests = new Counter({
    name: 'snapvm_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'snapvm_http_request_duration_seconds',
    help: 'HTTP request latency by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  for (const [name, pick] of [
    ['total', (s: PoolStats) => s.total],
    ['idle', (s: PoolStats) => s.idle],
    ['waiting', (s: PoolStats) => s.waiting],
  ] as const) {
    new Gauge({
      name: `snapvm_db_pool_${name}`,
      help: `Database pool: ${name} connections (waiting: queued transactions)`,
      registers: [registry],
      collect() {
        this.set(pick(poolStats()));
      },
    });
  }
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: it would hold ids and invitation tokens.
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    requests.inc(labels);
    latency.observe(labels, reply.elapsedTime / 1000);
  });
  return registry;
}
