import { lazy, type ReactNode, Suspense, useEffect } from 'react';
import { AuthLayout, Layout } from './components/Layout.js';
import { Link } from './components/Link.js';
import { ErrorNotice, Loading } from './components/States.js';
import {
  matchPath,
  navigate,
  type Params,
  pathTo,
  safeNextPath,
  useLocation,
} from './lib/router.js';
import { defaultOrg, rememberOrg, useSession } from './lib/session-context.js';
import { AcceptInvite } from './pages/AcceptInvite.js';
import { Account } from './pages/Account.js';
import { Audit } from './pages/Audit.js';
import { MachinePage } from './pages/MachinePage.js';
import { Machines } from './pages/Machines.js';
import { Members } from './pages/Members.js';
import { NewMachine } from './pages/NewMachine.js';
import { NewOrg } from './pages/NewOrg.js';
import { OrgSettings } from './pages/OrgSettings.js';
import { SignIn } from './pages/SignIn.js';
import { SignUp } from './pages/SignUp.js';

// xterm.js is most of the bundle's weight; only terminal pages need it.
const TerminalPage = lazy(() =>
  import('./pages/TerminalPage.js').then((module) => ({ default: module.TerminalPage })),
);

interface Route {
  path: string;
  /** Pages under /orgs/:org check that the person belongs to that org. */
  render: (params: Params) => ReactNode;
}

// Fixed words ("new-machine", "new-organization") never collide with a valid name of one
// segment, so routes can be matched in any order.
const SIGNED_IN_ROUTES: Route[] = [
  { path: '/', render: () => <Home /> },
  { path: '/new-organization', render: () => <NewOrg /> },
  { path: '/account', render: () => <Account /> },
  { path: '/account/tokens', render: () => <Account /> },
  { path: '/orgs/:org', render: (p) => <Machines org={p.org as string} /> },
  { path: '/orgs/:org/machines', render: (p) => <Machines org={p.org as string} /> },
  { path: '/orgs/:org/new-machine', render: (p) => <NewMachine org={p.org as string} /> },
  {
    path: '/orgs/:org/machines/:machine',
    render: (p) => <MachinePage org={p.org as string} machine={p.machine as string} />,
  },
  {
    path: '/orgs/:org/machines/:machine/sessions/:session',
    render: (p) => (
      <Suspense fallback={<Loading what="the terminal" />}>
        <TerminalPage
          org={p.org as string}
          machine={p.machine as string}
          session={p.session as string}
        />
      </Suspense>
    ),
  },
  { path: '/orgs/:org/members', render: (p) => <Members org={p.org as string} /> },
  { path: '/orgs/:org/audit', render: (p) => <Audit org={p.org as string} /> },
  { path: '/orgs/:org/settings', render: (p) => <OrgSettings org={p.org as string} /> },
];

const INVITATION_ROUTES = ['/invite/:token', '/invitations/:token', '/invitations/:token/accept'];

export function App() {
  const { me, error, refresh } = useSession();
  const { path, search } = useLocation();

  for (const pattern of INVITATION_ROUTES) {
    const params = matchPath(pattern, path);
    if (params && me !== undefined) return <AcceptInvite token={params.token as string} />;
  }
  if (me === undefined) {
    return error ? (
      <AuthLayout title="SnapVM is unreachable">
        <ErrorNotice error={error} retry={() => refresh().catch(() => undefined)} />
      </AuthLayout>
    ) : (
      <Loading what="SnapVM" />
    );
  }
  if (path === '/signin' || path === '/signup') {
    if (me) return <Redirect to={search.get('next') ?? '/'} />;
    return path === '/signin' ? <SignIn /> : <SignUp />;
  }
  if (!me) {
    const next =
      path === '/' ? '' : `?next=${encodeURIComponent(path + (search.size ? `?${search}` : ''))}`;
    return <Redirect to={`/signin${next}`} />;
  }
  for (const route of SIGNED_IN_ROUTES) {
    const params = matchPath(route.path, path);
    if (!params) continue;
    if (params.org !== undefined && !me.orgs.some((org) => org.slug === params.org)) {
      return <NotMember org={params.org} />;
    }
    return (
      <>
        <RememberOrg org={params.org} />
        {route.render(params)}
      </>
    );
  }
  return <NotFound />;
}

function RememberOrg({ org }: { org: string | undefined }) {
  useEffect(() => {
    if (org) rememberOrg(org);
  }, [org]);
  return null;
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(safeNextPath(to), { replace: true }), [to]);
  return null;
}

/** `/`: the last org used, or creating the first one right after sign-up. */
function Home() {
  const { me } = useSession();
  const org = me ? defaultOrg(me.orgs) : undefined;
  return <Redirect to={org ? pathTo('orgs', org.slug) : '/new-organization'} />;
}

function NotMember({ org }: { org: string }) {
  return (
    <Layout section="machines">
      <div className="page-narrow">
        <h1>Organization not found</h1>
        <p>
          There is no organization <code>{org}</code> that you belong to. If someone invited you,
          open the invitation link they sent.
        </p>
        <Link className="button" href="/">
          Go to your organizations
        </Link>
      </div>
    </Layout>
  );
}

function NotFound() {
  return (
    <Layout section="machines">
      <div className="page-narrow">
        <h1>Page not found</h1>
        <p>This address does not lead anywhere in SnapVM.</p>
        <Link className="button" href="/">
          Go home
        </Link>
      </div>
    </Layout>
  );
}
