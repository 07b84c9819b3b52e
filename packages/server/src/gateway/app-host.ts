// Machine URLs: `<machine>--<org>.<apps domain>[:port]`. Anything else is the main origin.
import { nameProblem } from '@snapvm/protocol';

export interface AppHost {
  machine: string;
  org: string;
  /** The host name without the port, lowercased: what per-host cookies and tickets bind to. */
  hostname: string;
}

/** The machine and org a Host header names, or null when it is not a machine host. */
export function parseAppHost(host: string | undefined, appsDomain: string): AppHost | null {
  if (!host) return null;
  const hostname = host.replace(/:\d+$/, '').toLowerCase();
  const suffix = `.${appsDomain.toLowerCase()}`;
  if (!hostname.endsWith(suffix)) return null;
  const label = hostname.slice(0, -suffix.length);
  const split = label.indexOf('--');
  if (split < 0 || label.includes('.')) return null;
  const machine = label.slice(0, split);
  const org = label.slice(split + 2);
  if (nameProblem(machine) || nameProblem(org)) return null;
  return { machine, org, hostname };
}
