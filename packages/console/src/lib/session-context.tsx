import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from 'react';
import { api, type Me, type OrgMembership } from './api.js';
import { ApiError, onUnauthorized } from './api-client.js';

// Who is signed in and which orgs they belong to, loaded once from GET /api/v1/me and
// refreshed after anything that changes it (sign-in, new org, accepted invitation).

interface SessionValue {
  /** undefined while loading, null when signed out. */
  me: Me | null | undefined;
  error: unknown;
  refresh: () => Promise<Me | null>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<SessionValue | null>(null);

const LAST_ORG_KEY = 'snapvm.lastOrg';

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);

  const refresh = useCallback(async () => {
    try {
      const next = await api.me();
      setMe(next);
      setError(null);
      return next;
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 401) {
        setMe(null);
        setError(null);
        return null;
      }
      setError(failure);
      throw failure;
    }
  }, []);

  useEffect(() => {
    refresh().catch(() => undefined);
    return onUnauthorized(() => setMe(null));
  }, [refresh]);

  const signOut = useCallback(async () => {
    try {
      await api.signOut();
    } finally {
      setMe(null);
    }
  }, []);

  return (
    <SessionContext.Provider value={{ me, error, refresh, signOut }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession needs a SessionProvider');
  return value;
}

export function rememberOrg(slug: string): void {
  try {
    localStorage.setItem(LAST_ORG_KEY, slug);
  } catch {
    // Storage can be disabled; the org is in the URL anyway.
  }
}

/** The org to open by default: the last one used if still a member, else the first. */
export function defaultOrg(orgs: OrgMembership[]): OrgMembership | undefined {
  let last: string | null = null;
  try {
    last = localStorage.getItem(LAST_ORG_KEY);
  } catch {
    last = null;
  }
  return orgs.find((org) => org.slug === last) ?? orgs[0];
}
