import { useEffect, useState } from 'react';
import { Layout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { Terminal } from '../components/Terminal.js';
import { pathTo } from '../lib/router.js';
import { clipboardHint } from '../lib/terminal-keys.js';

/** The session id is in the path, so a reload or a second tab attaches to the same session. */
export function TerminalPage({
  org,
  machine,
  session,
}: {
  org: string;
  machine: string;
  session: string;
}) {
  const [fullWindow, setFullWindow] = useState(false);
  useEffect(() => {
    document.title = `${machine} — terminal — SnapVM`;
  }, [machine]);
  return (
    <Layout org={org} section="machines">
      <div className={fullWindow ? 'terminal-page full-window' : 'terminal-page'}>
        <div className="terminal-toolbar">
          <p className="breadcrumb">
            <Link href={pathTo('orgs', org)}>Machines</Link> /{' '}
            <Link href={pathTo('orgs', org, 'machines', machine)}>{machine}</Link> /{' '}
            <code>{session}</code>
          </p>
          <div className="terminal-toolbar-actions">
            <span className="muted terminal-hint">{clipboardHint(navigator.userAgent)}</span>
            <button
              type="button"
              className="button button-small"
              aria-pressed={fullWindow}
              onClick={() => setFullWindow((value) => !value)}
            >
              {fullWindow ? 'Exit full window' : 'Full window'}
            </button>
          </div>
        </div>
        <Terminal org={org} machine={machine} session={session} fullWindow={fullWindow} />
      </div>
    </Layout>
  );
}
