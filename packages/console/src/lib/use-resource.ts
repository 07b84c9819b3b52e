import { useCallback, useEffect, useRef, useState } from 'react';
import { nextPollDelay } from './backoff.js';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

interface ResourceOptions<T> {
  /** Keep refreshing; `transitional(data)` true polls fast (e.g. a machine is starting). */
  poll?: { transitional: (data: T) => boolean };
}

/**
 * Loads data for a page and, when asked, keeps it fresh by polling with backoff. Results of
 * a superseded request (the key changed meanwhile) are dropped, so a slow answer for the old
 * org never overwrites the new one.
 */
export function useResource<T>(
  key: string,
  load: () => Promise<T>,
  options: ResourceOptions<T> = {},
): Resource<T> {
  const [state, setState] = useState<{ key: string; data?: T; error?: unknown; loading: boolean }>({
    key,
    loading: true,
  });
  const [generation, setGeneration] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const pollRef = useRef(options.poll);
  pollRef.current = options.poll;

  // biome-ignore lint/correctness/useExhaustiveDependencies: generation is the reload trigger
  useEffect(() => {
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    setState((previous) =>
      previous.key === key ? { ...previous, loading: true } : { key, loading: true },
    );
    const run = async () => {
      let latest: T | undefined;
      try {
        latest = await loadRef.current();
        if (cancelled) return;
        failures = 0;
        setState({ key, data: latest, loading: false });
      } catch (error) {
        if (cancelled) return;
        failures += 1;
        setState((previous) => ({ ...previous, key, error, loading: false }));
      }
      const poll = pollRef.current;
      if (!poll || cancelled) return;
      const delay = nextPollDelay({
        transitional: latest !== undefined && poll.transitional(latest),
        failures,
        hidden: document.visibilityState === 'hidden',
      });
      timer = setTimeout(run, delay);
    };
    run();
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }, [key, generation]);

  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  const current = state.key === key ? state : { data: undefined, error: undefined, loading: true };
  return { data: current.data, error: current.error, loading: current.loading, reload };
}
