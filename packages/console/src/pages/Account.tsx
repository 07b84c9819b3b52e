import { useState } from 'react';
import { CopyField } from '../components/CopyButton.js';
import { FormError, SubmitButton, TextField } from '../components/Form.js';
import { Layout } from '../components/Layout.js';
import { Empty, ErrorNotice, Loading } from '../components/States.js';
import { api, type NewApiToken } from '../lib/api.js';
import { formatTime } from '../lib/format.js';
import { useForm } from '../lib/use-form.js';
import { useResource } from '../lib/use-resource.js';

export function Account() {
  const tokens = useResource('tokens', () => api.listTokens());
  const [created, setCreated] = useState<NewApiToken | null>(null);
  const [revokeError, setRevokeError] = useState<unknown>(null);
  const form = useForm(
    { name: '' },
    { name: (value) => (value.trim() ? null : 'Give the token a name, e.g. "laptop CLI"') },
  );
  const submit = form.handleSubmit(async ({ name }) => {
    setCreated(await api.createToken(name.trim()));
    form.setValues({ name: '' });
    tokens.reload();
  });
  const revoke = async (id: string, name: string) => {
    if (!window.confirm(`Revoke the token "${name}"? Programs using it stop working at once.`)) {
      return;
    }
    setRevokeError(null);
    try {
      await api.revokeToken(id);
      if (created?.id === id) setCreated(null);
      tokens.reload();
    } catch (error) {
      setRevokeError(error);
    }
  };
  return (
    <Layout section="account">
      <div className="page-header">
        <h1>Account</h1>
      </div>
      <h2 className="section-title">API tokens</h2>
      <p className="lead">
        Tokens let scripts and the CLI act as you: send{' '}
        <code>Authorization: Bearer &lt;token&gt;</code>.
      </p>
      <section className="card" aria-labelledby="new-token-heading">
        <h2 id="new-token-heading">New token</h2>
        <form onSubmit={submit} noValidate className="inline-form">
          <TextField
            label="Name"
            autoComplete="off"
            error={form.errorFor('name')}
            {...form.bind('name')}
          />
          <SubmitButton busy={form.busy}>Create token</SubmitButton>
        </form>
        <FormError message={form.formError} />
        {created ? (
          <div className="notice notice-success" data-testid="new-token">
            <p>
              <strong>Copy this token now.</strong> It is shown only once.
            </p>
            <CopyField label={`Token ${created.name}`} value={created.token} />
          </div>
        ) : null}
      </section>
      {revokeError ? <ErrorNotice error={revokeError} /> : null}
      {tokens.error && !tokens.data ? (
        <ErrorNotice error={tokens.error} retry={tokens.reload} />
      ) : !tokens.data ? (
        <Loading what="tokens" />
      ) : tokens.data.items.length === 0 ? (
        <Empty title="No API tokens">
          <p>Create one above to use the API from scripts.</p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="API tokens">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.items.map((token) => (
                <tr key={token.id}>
                  <td data-label="Name">{token.name}</td>
                  <td data-label="Created">{formatTime(token.createdAt)}</td>
                  <td data-label="Last used">
                    {token.lastUsedAt ? formatTime(token.lastUsedAt) : 'never'}
                  </td>
                  <td className="actions">
                    <button
                      type="button"
                      className="button button-small button-danger"
                      onClick={() => revoke(token.id, token.name)}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <SignInSessions />
    </Layout>
  );
}

/** Where this person is signed in, so a lost laptop can be signed out from here. */
function SignInSessions() {
  const sessions = useResource('sign-in-sessions', () => api.listSignInSessions());
  const [error, setError] = useState<unknown>(null);
  const revoke = async (id: string) => {
    setError(null);
    try {
      await api.revokeSignInSession(id);
      sessions.reload();
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <section aria-labelledby="sessions-heading">
      <h2 className="section-title" id="sessions-heading">
        Signed-in sessions
      </h2>
      {error ? <ErrorNotice error={error} /> : null}
      {sessions.error && !sessions.data ? (
        <ErrorNotice error={sessions.error} retry={sessions.reload} />
      ) : !sessions.data ? (
        <Loading what="sessions" />
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Signed-in sessions">
            <thead>
              <tr>
                <th scope="col">Browser</th>
                <th scope="col">IP address</th>
                <th scope="col">Signed in</th>
                <th scope="col">Expires</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {sessions.data.items.map((session) => (
                <tr key={session.id}>
                  <td data-label="Browser">
                    {describeBrowser(session.userAgent)}
                    {session.current ? <span className="chip">this browser</span> : null}
                  </td>
                  <td data-label="IP address">{session.ip ?? '—'}</td>
                  <td data-label="Signed in">{formatTime(session.createdAt)}</td>
                  <td data-label="Expires">{formatTime(session.expiresAt)}</td>
                  <td className="actions">
                    {session.current ? null : (
                      <button
                        type="button"
                        className="button button-small button-danger"
                        onClick={() => revoke(session.id)}
                      >
                        Sign out
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** "Chrome on Linux" from a user agent string; the raw string when it is unusual. */
function describeBrowser(userAgent: string | null): string {
  if (!userAgent) return 'Unknown browser';
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /Firefox\//.test(userAgent)
      ? 'Firefox'
      : /Chrome\/|Chromium\//.test(userAgent)
        ? 'Chrome'
        : /Safari\//.test(userAgent)
          ? 'Safari'
          : null;
  const system = /Windows/.test(userAgent)
    ? 'Windows'
    : /Android/.test(userAgent)
      ? 'Android'
      : /iPhone|iPad/.test(userAgent)
        ? 'iOS'
        : /Mac OS X/.test(userAgent)
          ? 'macOS'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : null;
  if (!browser) return userAgent.slice(0, 60);
  return system ? `${browser} on ${system}` : browser;
}
