import '@xterm/xterm/css/xterm.css';
import { FitAddon } from '@xterm/addon-fit';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { Terminal as XTerm } from '@xterm/xterm';
import { useEffect, useRef, useState } from 'react';
import { api, attachUrl } from '../lib/api.js';
import { navigate, pathTo } from '../lib/router.js';
import { type ConnectionInfo, TerminalConnection } from '../lib/terminal-connection.js';
import { clipboardShortcut } from '../lib/terminal-keys.js';
import { Link } from './Link.js';
import { errorMessage } from './States.js';

const STATUS_TEXT: Record<ConnectionInfo['status'], string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  waking: 'Waking the machine…',
  reconnecting: 'Reconnecting…',
  exited: 'Session ended',
  closed: 'Disconnected',
};

function statusDetail(info: ConnectionInfo): string {
  if (info.status === 'reconnecting' && info.retryInMs !== null) {
    return `attempt ${info.attempt}, next try in ${Math.max(1, Math.round(info.retryInMs / 1000))} s`;
  }
  if (info.status === 'exited') {
    return info.exitCode === null ? 'the process ended' : `exit code ${info.exitCode}`;
  }
  return info.message ?? '';
}

/**
 * Puts the terminal's selection on the clipboard. Without the async clipboard API (a page
 * served over plain http from a non-local host), the copy command still runs inside the
 * key press, and xterm's own copy handler fills in the selection.
 */
function copySelection(term: XTerm): void {
  const selection = term.getSelection();
  if (!selection) return;
  if (navigator.clipboard) {
    navigator.clipboard.writeText(selection).catch(() => undefined);
  } else {
    document.execCommand('copy');
  }
}

/** A live terminal attached to one session; survives drops by resuming from its byte offset. */
export function Terminal({
  org,
  machine,
  session,
  fullWindow,
}: {
  org: string;
  machine: string;
  session: string;
  fullWindow: boolean;
}) {
  const hostRef = useRef<HTMLDivElement>(null);
  const connectionRef = useRef<TerminalConnection | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const termRef = useRef<XTerm | null>(null);
  const [info, setInfo] = useState<ConnectionInfo | null>(null);
  const [opening, setOpening] = useState(false);
  const [openError, setOpenError] = useState<string | null>(null);

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const term = new XTerm({
      allowProposedApi: true,
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 5000,
      theme: { background: '#0b1020', foreground: '#e5e7eb', cursor: '#a5b4fc' },
    });
    const fit = new FitAddon();
    fitRef.current = fit;
    term.loadAddon(fit);
    term.loadAddon(new WebLinksAddon());
    term.loadAddon(new Unicode11Addon());
    term.unicode.activeVersion = '11';
    term.open(host);
    termRef.current = term;

    const connection = new TerminalConnection({
      url: (query) => attachUrl(window.location, org, machine, session, query),
      onOutput: (bytes) => term.write(bytes),
      onReset: () => term.reset(),
      onStatus: setInfo,
    });
    connectionRef.current = connection;

    term.attachCustomKeyEventHandler((event) => {
      const shortcut = clipboardShortcut(event);
      if (shortcut === 'copy') {
        // Chrome would otherwise open DevTools' element picker on Ctrl+Shift+C.
        event.preventDefault();
        if (event.type === 'keydown') copySelection(term);
        return false;
      }
      // Returning false without preventDefault lets the browser paste: xterm reads the paste
      // event (bracketed paste included), and no clipboard permission is needed.
      return shortcut !== 'paste';
    });
    const input = term.onData((data) => connection.sendInput(data));
    const binary = term.onBinary((data) =>
      connection.sendInput(Uint8Array.from(data, (char) => char.charCodeAt(0) & 0xff)),
    );
    const resize = () => {
      try {
        fit.fit();
      } catch {
        // fit() throws while the element is hidden; the next resize fixes it.
      }
      connection.resize(term.cols, term.rows);
    };
    resize();
    connection.connect();
    term.focus();
    const observer = new ResizeObserver(resize);
    observer.observe(host);
    const online = () => connection.reconnectNow();
    window.addEventListener('online', online);
    return () => {
      window.removeEventListener('online', online);
      observer.disconnect();
      input.dispose();
      binary.dispose();
      connection.dispose();
      connectionRef.current = null;
      termRef.current = null;
      term.dispose();
    };
  }, [org, machine, session]);

  // Refit when the full-window toggle changes the container, and give the keyboard back to
  // the terminal rather than leaving it on the toggle button.
  // biome-ignore lint/correctness/useExhaustiveDependencies: fullWindow changes the layout
  useEffect(() => {
    requestAnimationFrame(() => {
      try {
        fitRef.current?.fit();
      } catch {
        // Hidden element; see above.
      }
      termRef.current?.focus();
    });
  }, [fullWindow]);

  const status = info?.status ?? 'connecting';
  return (
    <div className="terminal-frame">
      <div
        className={`terminal-status status-${status}`}
        role="status"
        aria-live="polite"
        data-status={status}
      >
        <span className="status-dot" aria-hidden="true" />
        <span>{STATUS_TEXT[status]}</span>
        {info ? <span className="muted">{statusDetail(info)}</span> : null}
        <span className="terminal-actions">
          {status === 'exited' || status === 'closed' ? (
            <Link className="button button-small" href={pathTo('orgs', org, 'machines', machine)}>
              Back to {machine}
            </Link>
          ) : null}
          {status === 'exited' || status === 'closed' ? (
            // The shell exited, or the session ended with a stopped machine: offer the next step.
            <button
              type="button"
              className="button button-small button-primary"
              disabled={opening}
              onClick={async () => {
                setOpening(true);
                setOpenError(null);
                try {
                  const term = termRef.current;
                  const created = await api.createSession(org, machine, {
                    cols: term?.cols ?? 120,
                    rows: term?.rows ?? 32,
                  });
                  navigate(pathTo('orgs', org, 'machines', machine, 'sessions', created.id));
                } catch (failure) {
                  setOpenError(errorMessage(failure));
                } finally {
                  setOpening(false);
                }
              }}
            >
              {opening ? 'Opening…' : 'New terminal'}
            </button>
          ) : null}
          {openError ? <span className="field-error">{openError}</span> : null}
          {status === 'reconnecting' ? (
            <button
              type="button"
              className="button button-small"
              onClick={() => connectionRef.current?.reconnectNow()}
            >
              Retry now
            </button>
          ) : null}
        </span>
      </div>
      <div className="terminal-host" ref={hostRef} data-testid="terminal" />
    </div>
  );
}
