import type { FastifyRequest } from 'fastify';
import { readCookie, SESSION_COOKIE } from '../auth/cookies.js';
import { ForbiddenError } from '../errors.js';
import { bearerToken } from './request-context.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cookies ride along on cross-site requests, so a mutation authenticated by cookie (and any
 * login or signup) must come from the console's own origin. Bearer tokens are never sent
 * implicitly and need no such check. Non-browser clients send neither Origin nor
 * Sec-Fetch-Site and are let through: the attack needs a browser.
 */
export function checkOrigin(request: FastifyRequest, publicUrl: string): void {
  if (SAFE_METHODS.has(request.method)) return;
  if (bearerToken(request)) return;
  const usesCookie = readCookie(request.headers.cookie, SESSION_COOKIE) !== null;
  const isAuthEndpoint = request.url.startsWith('/api/v1/auth/');
  if (!usesCookie && !isAuthEndpoint) return;
  const origin = request.headers.origin;
  if (origin !== undefined) {
    // The server's own address counts too (127.0.0.1 vs localhost), except machine hosts:
    // `<machine>--<org>.` pages run users' code and must never act as the console.
    const ownOrigin = request.host.includes('--') ? null : `${request.protocol}://${request.host}`;
    if (origin !== new URL(publicUrl).origin && origin !== ownOrigin) throw foreign();
    return;
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw foreign();
}

function foreign(): ForbiddenError {
  return new ForbiddenError(
    'Cookie-authenticated changes must come from the SnapVM console itself; use an API token ' +
      'from other sites.',
    'foreign_origin',
  );
}
