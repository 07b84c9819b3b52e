import { useSyncExternalStore } from 'react';

// A deliberately small History-API router: the console has a dozen routes and no nested
// layouts, and keeping the org in the path is all it needs.

export type Params = Record<string, string>;

/** Matches `/orgs/:org/machines/:machine` against a path; params are URL-decoded. */
export function matchPath(pattern: string, path: string): Params | null {
  const patternParts = pattern.split('/').filter(Boolean);
  const pathParts = path.split('/').filter(Boolean);
  if (patternParts.length !== pathParts.length) return null;
  const params: Params = {};
  for (let i = 0; i < patternParts.length; i++) {
    const expected = patternParts[i] as string;
    const actual = pathParts[i] as string;
    if (expected.startsWith(':')) {
      try {
        params[expected.slice(1)] = decodeURIComponent(actual);
      } catch {
        return null;
      }
    } else if (expected !== actual) {
      return null;
    }
  }
  return params;
}

/** Builds a path from parts, encoding each dynamic part. */
export function pathTo(...parts: Array<string | number>): string {
  return `/${parts.map((part) => encodeURIComponent(String(part))).join('/')}`;
}

/** Only same-origin paths may be followed after sign-in, so `?next=` cannot send anyone away. */
export function safeNextPath(next: string | null): string {
  if (!next?.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  return next;
}

const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

function currentLocation(): string {
  return window.location.pathname + window.location.search;
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === currentLocation()) return;
  // The server's own pages (the machine-URL sign-in hand-off) are not the app's to draw.
  if (to.startsWith('/api/')) {
    window.location.assign(to);
    return;
  }
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  for (const listener of listeners) listener();
}

/** The current path and query string; re-renders on navigation. */
export function useLocation(): { path: string; search: URLSearchParams } {
  const location = useSyncExternalStore(subscribe, currentLocation);
  const queryStart = location.indexOf('?');
  return queryStart === -1
    ? { path: location, search: new URLSearchParams() }
    : {
        path: location.slice(0, queryStart),
        search: new URLSearchParams(location.slice(queryStart)),
      };
}
