import { type KeyboardEvent, useEffect, useRef, useState } from 'react';
import { CopyButton } from '../components/CopyButton.js';
import { FormError } from '../components/Form.js';
import { IdleForm } from '../components/IdleSettings.js';
import { Layout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { MachineActivity } from '../components/MachineActivity.js';
import { MachineTimeline } from '../components/MachineTimeline.js';
import { Services } from '../components/Services.js';
import { StateBadge } from '../components/StateBadge.js';
import { Empty, ErrorNotice, errorMessage, Loading } from '../components/States.js';
import {
  api,
  type Machine,
  type MachineState,
  ownerLabel,
  type TerminalSession,
  TRANSITIONAL_STATES,
  type UrlAccess,
} from '../lib/api.js';
import { ApiError } from '../lib/api-client.js';
import { formatAge, formatTime } from '../lib/format.js';
import { draftFor, periodLabel } from '../lib/idle-form.js';
import { navigate, pathTo } from '../lib/router.js';
import { useResource } from '../lib/use-resource.js';

type Action = 'start' | 'stop' | 'suspend';

const ACTIONS: Record<MachineState, Action[]> = {
  creating: [],
  starting: [],
  started: ['suspend', 'stop'],
  suspended: ['start', 'stop'],
  stopping: [],
  stopped: ['start'],
  destroying: [],
  destroyed: [],
  failed: ['start', 'stop'],
};

const ACTION_LABELS: Record<Action, string> = { start: 'Start', stop: 'Stop', suspend: 'Suspend' };

const ACCESS_LABELS: Record<UrlAccess, string> = {
  private: 'Private — owner and org admins',
  org: 'Organization — every member',
  public: 'Public — anyone with the link',
};

export function MachinePage({ org, machine: name }: { org: string; machine: string }) {
  const machine = useResource(`machine:${org}/${name}`, () => api.getMachine(org, name), {
    poll: { transitional: (data) => TRANSITIONAL_STATES.has(data.state) },
  });

  return (
    <Layout org={org} section="machines">
      <p className="breadcrumb">
        <Link href={pathTo('orgs', org)}>Machines</Link> /
      </p>
      {machine.error && !machine.data ? (
        <ErrorNotice error={machine.error} retry={machine.reload} />
      ) : !machine.data ? (
        <Loading what={name} />
      ) : (
        <>
          <div className="page-header">
            <h1 className="machine-title">
              {machine.data.name} <StateBadge state={machine.data.state} />
            </h1>
            <Controls org={org} machine={machine.data} onChange={machine.reload} />
          </div>
          {machine.error ? <ErrorNotice error={machine.error} /> : null}
          <MachineActivity machine={machine.data} />
          <div className="grid-2">
            <section className="card" aria-labelledby="details-heading">
              <h2 id="details-heading">Details</h2>
              <dl className="details">
                <dt>Owner</dt>
                <dd>{ownerLabel(machine.data.owner)}</dd>
                <dt>Size</dt>
                <dd>{machine.data.size ?? '—'}</dd>
                <dt>Region</dt>
                <dd>{machine.data.region ?? '—'}</dd>
                <dt>Runtime</dt>
                <dd>{machine.data.runtime ?? '—'}</dd>
                <dt>Created</dt>
                <dd>{formatTime(machine.data.createdAt)}</dd>
                <dt>When idle</dt>
                <dd>{idleSummary(machine.data.idle)}</dd>
              </dl>
            </section>
            <UrlCard org={org} machine={machine.data} onChange={machine.reload} />
          </div>
          <IdleCard org={org} machine={machine.data} onChange={machine.reload} />
          <Sessions org={org} machine={machine.data} />
          <Services org={org} machine={machine.data.name} />
          <MachineTimeline
            org={org}
            machine={machine.data.name}
            revision={`${machine.data.state}/${machine.data.desiredState}`}
          />
        </>
      )}
    </Layout>
  );
}

function Controls({
  org,
  machine,
  onChange,
}: {
  org: string;
  machine: Machine;
  onChange: () => void;
}) {
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const run = async (label: string, action: () => Promise<unknown>) => {
    setBusy(label);
    setError(null);
    try {
      await action();
      onChange();
    } catch (failure) {
      setError(errorMessage(failure));
    } finally {
      setBusy(null);
    }
  };
  const gone = machine.state === 'destroying' || machine.state === 'destroyed';
  return (
    <div className="page-actions">
      {ACTIONS[machine.state].map((action) => (
        <button
          key={action}
          type="button"
          className={action === 'start' ? 'button button-primary' : 'button'}
          disabled={busy !== null}
          onClick={() => run(action, () => api.machineAction(org, machine.name, action))}
        >
          {busy === action ? 'Working…' : ACTION_LABELS[action]}
        </button>
      ))}
      {!gone ? (
        <button
          type="button"
          className="button button-danger"
          disabled={busy !== null}
          onClick={() => setConfirming(true)}
        >
          Destroy
        </button>
      ) : null}
      {error ? <FormError message={error} /> : null}
      {confirming ? (
        <DestroyDialog
          name={machine.name}
          onCancel={() => setConfirming(false)}
          onConfirm={async () => {
            await api.destroyMachine(org, machine.name);
            setConfirming(false);
            navigate(pathTo('orgs', org));
          }}
        />
      ) : null}
    </div>
  );
}

function DestroyDialog({
  name,
  onCancel,
  onConfirm,
}: {
  name: string;
  onCancel: () => void;
  onConfirm: () => Promise<void>;
}) {
  const [typed, setTyped] = useState('');
  const inputRef = useRef<HTMLInputElement>(null);
  // A modal dialog takes the focus so the keyboard is inside it (WAI-ARIA dialog pattern).
  useEffect(() => inputRef.current?.focus(), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <div className="dialog-backdrop">
      <div
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby="destroy-heading"
        onKeyDown={(event) => {
          if (event.key === 'Escape') onCancel();
          if (event.key === 'Tab') keepFocusInside(event);
        }}
      >
        <h2 id="destroy-heading">Destroy {name}?</h2>
        <p>
          This deletes the machine and its disk: files, packages and services are gone for good.
        </p>
        <form
          onSubmit={async (event) => {
            event.preventDefault();
            if (typed !== name || busy) return;
            setBusy(true);
            setError(null);
            try {
              await onConfirm();
            } catch (failure) {
              setError(errorMessage(failure));
              setBusy(false);
            }
          }}
        >
          <label htmlFor="destroy-confirm">
            Type <strong>{name}</strong> to confirm
          </label>
          <input
            id="destroy-confirm"
            ref={inputRef}
            autoComplete="off"
            spellCheck={false}
            value={typed}
            onChange={(event) => setTyped(event.target.value)}
          />
          <FormError message={error} />
          <div className="button-row">
            <button
              type="submit"
              className="button button-danger"
              disabled={typed !== name || busy}
            >
              {busy ? 'Destroying…' : 'Destroy machine'}
            </button>
            <button type="button" className="button" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}

function UrlCard({
  org,
  machine,
  onChange,
}: {
  org: string;
  machine: Machine;
  onChange: () => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const url = machine.urls?.app;
  const access = machine.urlAccess ?? 'private';
  return (
    <section className="card" aria-labelledby="url-heading">
      <h2 id="url-heading">URL</h2>
      {url ? (
        <div className="copy-field">
          <a href={url} target="_blank" rel="noreferrer" className="url">
            {url}
          </a>
          <CopyButton text={url} />
        </div>
      ) : (
        <p className="muted">No URL yet.</p>
      )}
      <label htmlFor="url-access">Who can open it</label>
      <select
        id="url-access"
        value={access}
        disabled={saving}
        onChange={async (event) => {
          setSaving(true);
          setError(null);
          try {
            await api.updateMachine(org, machine.name, {
              urlAccess: event.target.value as UrlAccess,
            });
            onChange();
          } catch (failure) {
            setError(errorMessage(failure));
          } finally {
            setSaving(false);
          }
        }}
      >
        {(Object.keys(ACCESS_LABELS) as UrlAccess[]).map((option) => (
          <option key={option} value={option}>
            {ACCESS_LABELS[option]}
          </option>
        ))}
      </select>
      <p className="field-hint">
        Reaches port 8080 inside the machine; opening it wakes the machine.
      </p>
      <FormError message={error} />
    </section>
  );
}

function Sessions({ org, machine }: { org: string; machine: Machine }) {
  // Sessions end when the machine stops: the list is read again on every state change.
  const sessions = useResource(`sessions:${org}/${machine.name}:${machine.state}`, () =>
    api.listSessions(org, machine.name),
  );
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  // The machine itself is visible here, so a 404 for its sessions means this server has no
  // terminal API yet rather than "not yours".
  const unsupported = sessions.error instanceof ApiError && sessions.error.status === 404;
  const open = (id: string) =>
    navigate(pathTo('orgs', org, 'machines', machine.name, 'sessions', id));
  const create = async () => {
    setCreating(true);
    setError(null);
    try {
      const session = await api.createSession(org, machine.name, { cols: 120, rows: 32 });
      open(session.id);
    } catch (failure) {
      setError(errorMessage(failure));
      setCreating(false);
    }
  };
  const end = async (id: string) => {
    setError(null);
    try {
      await api.endSession(org, machine.name, id);
      sessions.reload();
    } catch (failure) {
      setError(errorMessage(failure));
    }
  };
  return (
    <section className="card" aria-labelledby="sessions-heading">
      <div className="card-header">
        <h2 id="sessions-heading">Terminals</h2>
        {unsupported ? null : (
          <button
            type="button"
            className="button button-primary"
            onClick={create}
            disabled={creating}
          >
            {creating ? 'Opening…' : 'New terminal'}
          </button>
        )}
      </div>
      <FormError message={error} />
      {unsupported ? (
        <p className="muted">Terminals are not available on this server yet.</p>
      ) : sessions.error && !sessions.data ? (
        <ErrorNotice error={sessions.error} retry={sessions.reload} />
      ) : !sessions.data ? (
        <Loading what="terminals" />
      ) : sessions.data.items.length === 0 && machine.state === 'suspended' ? (
        // The list is read from the running machine and reading never wakes it.
        <Empty title="Terminals are listed while the machine runs">
          <p>
            Sessions survive a suspend: reopen one from its link, or open a new terminal (either
            wakes the machine).
          </p>
        </Empty>
      ) : sessions.data.items.length === 0 ? (
        <Empty title="No terminal sessions">
          <p>
            A terminal session keeps running when you close the tab; come back to it any time.
            {machine.state === 'stopped' ? ' Sessions end when the machine stops.' : ''}
          </p>
        </Empty>
      ) : (
        <ul className="list">
          {sessions.data.items.map((session) => (
            <li key={session.id}>
              <Link href={pathTo('orgs', org, 'machines', machine.name, 'sessions', session.id)}>
                <code>{session.id}</code>
              </Link>
              <span className="muted">{sessionSummary(session)}</span>
              {session.state === 'exited' ? (
                <button
                  type="button"
                  className="button button-small"
                  onClick={() => end(session.id)}
                >
                  Remove
                </button>
              ) : (
                <button
                  type="button"
                  className="button button-small button-danger"
                  onClick={() => {
                    if (window.confirm('End this session? Its shell and programs are stopped.')) {
                      end(session.id);
                    }
                  }}
                >
                  End
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** "suspends after 15 min (org default), stops after 2 h (this machine)". */
function idleSummary(idle: Machine['idle'] | undefined): string {
  if (!idle) return '—';
  const from = (tier: 'suspendAfterSeconds' | 'stopAfterSeconds') =>
    idle.source[tier] === 'org' ? 'org default' : 'this machine';
  const parts: string[] = [];
  if (idle.suspendAfterSeconds !== null) {
    parts.push(
      `suspends after ${periodLabel(idle.suspendAfterSeconds)} (${from('suspendAfterSeconds')})`,
    );
  } else parts.push(`never suspends (${from('suspendAfterSeconds')})`);
  if (idle.stopAfterSeconds !== null) {
    parts.push(`stops after ${periodLabel(idle.stopAfterSeconds)} (${from('stopAfterSeconds')})`);
  } else parts.push(`never stops (${from('stopAfterSeconds')})`);
  return parts.join(', ');
}

/** The machine's own idle periods, or the org's defaults, which it then follows. */
function IdleCard({
  org,
  machine,
  onChange,
}: {
  org: string;
  machine: Machine;
  onChange: () => void;
}) {
  const orgSettings = useResource(`org:${org}`, () => api.getOrg(org));
  const idle = machine.idle;
  const defaults = orgSettings.data?.idle;
  return (
    <section className="card" aria-labelledby="idle-heading">
      <h2 id="idle-heading">Idle</h2>
      <p className="field-hint">
        With nothing attached, running or serving traffic, the machine is suspended after the first
        period and stopped after the second. "Org default" follows the organization's setting, also
        when it changes later.
      </p>
      {orgSettings.error && !defaults ? (
        <ErrorNotice error={orgSettings.error} retry={orgSettings.reload} />
      ) : !defaults ? (
        <Loading what="the org's defaults" />
      ) : (
        <IdleForm
          initial={{
            suspendAfterSeconds: draftFor(
              idle.suspendAfterSeconds,
              idle.source.suspendAfterSeconds,
            ),
            stopAfterSeconds: draftFor(idle.stopAfterSeconds, idle.source.stopAfterSeconds),
          }}
          orgDefaults={defaults}
          onSave={async (body) => {
            await api.updateMachine(org, machine.name, { idle: body });
            onChange();
          }}
        />
      )}
    </section>
  );
}

/** Tab and Shift+Tab cycle inside a modal dialog instead of reaching the page behind it. */
function keepFocusInside(event: KeyboardEvent<HTMLElement>): void {
  const focusable = Array.from(
    event.currentTarget.querySelectorAll<HTMLElement>(
      'button:not(:disabled), input, select, a[href]',
    ),
  );
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (!first || !last) return;
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

/** "running · 2 attached · started 5 min ago" or "exited with code 0 · started 1 h ago". */
function sessionSummary(session: TerminalSession): string {
  const parts: string[] = [];
  if (session.state === 'exited') {
    const code = session.exitCode;
    parts.push(code === null || code === undefined ? 'exited' : `exited with code ${code}`);
  } else if (session.state === 'running') {
    parts.push('running');
    if (session.attachedClients) parts.push(`${session.attachedClients} attached`);
  }
  const age = formatAge(session.createdAt);
  if (age) parts.push(`started ${age}`);
  return parts.join(' · ');
}
