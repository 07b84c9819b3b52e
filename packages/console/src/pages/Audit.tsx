import { useState } from 'react';
import { Layout } from '../components/Layout.js';
import { Empty, ErrorNotice, Loading } from '../components/States.js';
import { type AuditEntry, api, canManageOrg } from '../lib/api.js';
import { formatTime, userName } from '../lib/format.js';
import { useSession } from '../lib/session-context.js';
import { useResource } from '../lib/use-resource.js';

export function Audit({ org }: { org: string }) {
  const { me } = useSession();
  const role = me?.orgs.find((candidate) => candidate.slug === org)?.role;
  const first = useResource(`audit:${org}`, () => api.listAudit(org, null));
  const [more, setMore] = useState<{ items: AuditEntry[]; cursor: string | null } | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(null);

  if (!canManageOrg(role)) {
    return (
      <Layout org={org} section="audit">
        <h1>Audit log</h1>
        <Empty title="Only admins can see the audit log">
          <p>Ask an owner or admin of {org} if you need to know who did what.</p>
        </Empty>
      </Layout>
    );
  }

  const items = [...(first.data?.items ?? []), ...(more?.items ?? [])];
  const cursor = more ? more.cursor : (first.data?.nextCursor ?? null);
  const loadMore = async () => {
    if (!cursor) return;
    setLoadingMore(true);
    setMoreError(null);
    try {
      const page = await api.listAudit(org, cursor);
      setMore({ items: [...(more?.items ?? []), ...page.items], cursor: page.nextCursor });
    } catch (error) {
      setMoreError(error);
    } finally {
      setLoadingMore(false);
    }
  };

  return (
    <Layout org={org} section="audit">
      <div className="page-header">
        <h1>Audit log</h1>
        <button
          type="button"
          className="button button-small"
          onClick={() => {
            setMore(null);
            first.reload();
          }}
        >
          Refresh
        </button>
      </div>
      {first.error && !first.data ? (
        <ErrorNotice error={first.error} retry={first.reload} />
      ) : !first.data ? (
        <Loading what="the audit log" />
      ) : items.length === 0 ? (
        <Empty title="Nothing recorded yet" />
      ) : (
        <>
          <div className="table-wrap">
            <table className="table" aria-label="Audit log">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Who</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {items.map((entry, index) => (
                  <tr key={entry.id ?? index}>
                    <td data-label="When">{formatTime(entry.at)}</td>
                    <td data-label="Who">
                      <span title={entry.actor?.email}>{userName(entry.actor)}</span>
                    </td>
                    <td data-label="Action">
                      <code>{entry.action}</code>
                    </td>
                    <td data-label="Target">
                      <span title={auditTarget(entry)}>{shortTarget(auditTarget(entry))}</span>
                    </td>
                    <td data-label="Details" className="audit-details">
                      {auditDetails(entry.details)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {moreError ? <ErrorNotice error={moreError} /> : null}
          {cursor ? (
            <button type="button" className="button" onClick={loadMore} disabled={loadingMore}>
              {loadingMore ? 'Loading…' : 'Load older entries'}
            </button>
          ) : null}
        </>
      )}
    </Layout>
  );
}

function auditTarget(entry: AuditEntry): string {
  return [entry.target.type, entry.target.id].filter(Boolean).join(' ');
}

/** "machine 3f2a9c1e" instead of a full UUID; the full target is in the tooltip. */
function shortTarget(target: string): string {
  return target.replace(/\b([0-9a-f]{8})-[0-9a-f-]{27}\b/g, '$1');
}

function auditDetails(details: unknown): string {
  if (!details || typeof details !== 'object') return typeof details === 'string' ? details : '';
  return Object.entries(details as Record<string, unknown>)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(
      ([key, value]) =>
        `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`,
    )
    .join(' · ');
}
