import { type ReactNode, useEffect } from 'react';
import { canManageOrg } from '../lib/api.js';
import { navigate, pathTo } from '../lib/router.js';
import { defaultOrg, useSession } from '../lib/session-context.js';
import { Link } from './Link.js';

export type Section = 'machines' | 'members' | 'audit' | 'settings' | 'account' | 'orgs';

const SECTION_TITLES: Record<Section, string> = {
  machines: 'Machines',
  members: 'Members',
  audit: 'Audit log',
  settings: 'Settings',
  account: 'Account',
  orgs: 'Organizations',
};

function orgLabel(org: { name: string; role: string }): string {
  return `${org.name} (${org.role})`;
}

/** The signed-in frame: org switcher, sections of the current org, the account menu. */
export function Layout({
  org,
  section,
  children,
}: {
  org?: string | undefined;
  section: Section;
  children: ReactNode;
}) {
  const { me, signOut } = useSession();
  // Pages inside (e.g. a terminal) may set a more specific title after this runs.
  useEffect(() => {
    document.title = `${SECTION_TITLES[section]}${org ? ` · ${org}` : ''} — SnapVM`;
  }, [section, org]);
  const orgs = me?.orgs ?? [];
  const membership = orgs.find((candidate) => candidate.slug === org);
  const currentOrg = membership ?? defaultOrg(orgs);
  const navItems: Array<{ id: Section; label: string; href: string }> = [];
  if (currentOrg) {
    navItems.push({ id: 'machines', label: 'Machines', href: pathTo('orgs', currentOrg.slug) });
    navItems.push({
      id: 'members',
      label: 'Members',
      href: pathTo('orgs', currentOrg.slug, 'members'),
    });
    if (canManageOrg(currentOrg.role)) {
      navItems.push({
        id: 'audit',
        label: 'Audit log',
        href: pathTo('orgs', currentOrg.slug, 'audit'),
      });
      navItems.push({
        id: 'settings',
        label: 'Settings',
        href: pathTo('orgs', currentOrg.slug, 'settings'),
      });
    }
  }
  navItems.push({ id: 'account', label: 'Account', href: '/account' });

  return (
    <div className="app">
      <header className="topbar">
        <Link href="/" className="brand" aria-label="SnapVM home">
          <span className="brand-mark" aria-hidden="true">
            ›_
          </span>
          <span className="brand-name">SnapVM</span>
        </Link>
        {orgs.length > 0 ? (
          <label className="org-switcher">
            <span className="visually-hidden">Organization</span>
            <select
              // A narrow screen may cut the name short; the tooltip keeps all of it.
              title={currentOrg ? orgLabel(currentOrg) : undefined}
              value={currentOrg?.slug ?? ''}
              onChange={(event) => {
                if (event.target.value === '__new') navigate('/new-organization');
                else navigate(pathTo('orgs', event.target.value));
              }}
            >
              {orgs.map((candidate) => (
                <option key={candidate.slug} value={candidate.slug}>
                  {orgLabel(candidate)}
                </option>
              ))}
              <option value="__new">+ New organization…</option>
            </select>
          </label>
        ) : null}
        <nav className="nav" aria-label="Sections">
          {navItems.map((item) => (
            <Link
              key={item.id}
              href={item.href}
              className={item.id === section ? 'nav-link active' : 'nav-link'}
              aria-current={item.id === section ? 'page' : undefined}
            >
              {item.label}
            </Link>
          ))}
        </nav>
        <div className="account">
          <span className="account-name" title={me?.user.email}>
            {me?.user.name || me?.user.email}
          </span>
          <button
            type="button"
            className="button button-small button-ghost"
            onClick={async () => {
              await signOut().catch(() => undefined);
              navigate('/signin');
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main className="content">{children}</main>
    </div>
  );
}

/** The frame for signed-out pages: a centered card. */
export function AuthLayout({ title, children }: { title: string; children: ReactNode }) {
  return (
    <div className="auth-page">
      <main className="auth-card">
        <div className="brand brand-large">
          <span className="brand-mark" aria-hidden="true">
            ›_
          </span>
          SnapVM
        </div>
        <h1>{title}</h1>
        {children}
      </main>
    </div>
  );
}
