import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AGENT_TOKEN_HEADER } from '@snapvm/protocol';

const digest = (value: string) => createHash('sha256').update(value).digest();

export type TokenSource = 'authorization' | 'header';

/** Checks a request's agent token in constant time. Comparing digests keeps the token's
 * length from leaking through timing as well. Returns where the token was found, so the
 * proxy can strip exactly that header, or null when it is missing or wrong. */
export function createTokenCheck(token: string) {
  const expected = digest(token);
  const matches = (candidate: string) => timingSafeEqual(digest(candidate), expected);
  return (headers: IncomingHttpHeaders): TokenSource | null => {
    const own = headers[AGENT_TOKEN_HEADER];
    if (typeof own === 'string') return matches(own) ? 'header' : null;
    const auth = headers.authorization;
    const match = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
    return match?.[1] && matches(match[1]) ? 'authorization' : null;
  };
}
