import { IdleForm } from '../components/IdleSettings.js';
import { Layout } from '../components/Layout.js';
import { Empty, ErrorNotice, Loading } from '../components/States.js';
import { api, canManageOrg } from '../lib/api.js';
import { draftFor, periodLabel } from '../lib/idle-form.js';
import { useSession } from '../lib/session-context.js';
import { useResource } from '../lib/use-resource.js';

export function OrgSettings({ org }: { org: string }) {
  const { me } = useSession();
  const role = me?.orgs.find((candidate) => candidate.slug === org)?.role;
  const settings = useResource(`org:${org}`, () => api.getOrg(org));
  const idle = settings.data?.idle;

  return (
    <Layout org={org} section="settings">
      <div className="page-header">
        <h1>Settings</h1>
      </div>
      {settings.error && !settings.data ? (
        <ErrorNotice error={settings.error} retry={settings.reload} />
      ) : !idle ? (
        <Loading what="settings" />
      ) : (
        <section className="card" aria-labelledby="idle-heading">
          <h2 id="idle-heading">Idle</h2>
          <p className="field-hint">
            A machine with no terminal attached, no command running and no traffic is suspended
            after the first period (memory kept, wakes in milliseconds) and stopped after the second
            (memory freed, wakes in under a second). These are the defaults of every machine in{' '}
            {org} that does not set its own.
          </p>
          {canManageOrg(role) ? (
            <IdleForm
              initial={{
                suspendAfterSeconds: draftFor(idle.suspendAfterSeconds),
                stopAfterSeconds: draftFor(idle.stopAfterSeconds),
              }}
              onSave={async (body) => {
                // A machine-only value never comes from this form: it offers no "inherit".
                if (body.suspendAfterSeconds === 'inherit' || body.stopAfterSeconds === 'inherit')
                  return;
                await api.updateOrg(org, {
                  idle: {
                    suspendAfterSeconds: body.suspendAfterSeconds,
                    stopAfterSeconds: body.stopAfterSeconds,
                  },
                });
                settings.reload();
              }}
            />
          ) : (
            <Empty title="Only admins and owners can change these">
              <p>
                Machines {tierSentence('suspend', idle.suspendAfterSeconds)} and{' '}
                {tierSentence('stop', idle.stopAfterSeconds)} when idle, unless their owner sets
                their own.
              </p>
            </Empty>
          )}
        </section>
      )}
    </Layout>
  );
}

/** "suspend after 5 min" or "never suspend". */
function tierSentence(verb: 'suspend' | 'stop', seconds: number | null): string {
  return seconds === null ? `never ${verb}` : `${verb} after ${periodLabel(seconds)}`;
}
