import { useState } from 'react';
import { FormError } from '../components/Form.js';
import { AuthLayout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { errorMessage } from '../components/States.js';
import { api } from '../lib/api.js';
import { navigate, pathTo } from '../lib/router.js';
import { rememberOrg, useSession } from '../lib/session-context.js';

/** The page an invitation link opens: sign in (or up) first, then join with one click. */
export function AcceptInvite({ token }: { token: string }) {
  const { me, refresh } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const here = `${window.location.pathname}`;

  if (!me) {
    const next = `?next=${encodeURIComponent(here)}`;
    return (
      <AuthLayout title="You're invited">
        <p>You have been invited to join an organization on SnapVM.</p>
        <p>Sign in or create an account with the email address the invitation was sent to.</p>
        <div className="button-row">
          <Link className="button button-primary" href={`/signup${next}`}>
            Create account
          </Link>
          <Link className="button" href={`/signin${next}`}>
            Sign in
          </Link>
        </div>
      </AuthLayout>
    );
  }

  const accept = async () => {
    setBusy(true);
    setError(null);
    try {
      const before = new Set(me.orgs.map((org) => org.slug));
      const result = await api.acceptInvitation(token);
      const updated = await refresh();
      const named =
        typeof result?.org === 'string' ? result.org : (result?.org?.slug ?? result?.slug);
      const joined = named ?? updated?.orgs.find((org) => !before.has(org.slug))?.slug;
      if (joined) {
        rememberOrg(joined);
        navigate(pathTo('orgs', joined), { replace: true });
      } else {
        navigate('/', { replace: true });
      }
    } catch (failure) {
      setError(errorMessage(failure));
      setBusy(false);
    }
  };

  return (
    <AuthLayout title="Join organization">
      <p>
        You are signed in as <strong>{me.user.email}</strong>.
      </p>
      <FormError message={error} />
      <div className="button-row">
        <button type="button" className="button button-primary" onClick={accept} disabled={busy}>
          {busy ? 'Joining…' : 'Accept invitation'}
        </button>
        <Link className="button" href="/">
          Not now
        </Link>
      </div>
    </AuthLayout>
  );
}
