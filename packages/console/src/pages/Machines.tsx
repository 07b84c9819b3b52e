import { Layout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { StateBadge } from '../components/StateBadge.js';
import { Empty, ErrorNotice, Loading } from '../components/States.js';
import {
  api,
  canManageOrg,
  type Machine,
  ownerId,
  ownerLabel,
  TRANSITIONAL_STATES,
} from '../lib/api.js';
import { navigate, pathTo, useLocation } from '../lib/router.js';
import { useSession } from '../lib/session-context.js';
import { useResource } from '../lib/use-resource.js';

export function Machines({ org }: { org: string }) {
  const { me } = useSession();
  const { search } = useLocation();
  const role = me?.orgs.find((candidate) => candidate.slug === org)?.role;
  // Members only ever see their own machines, so the filter is for admins and owners.
  const canFilter = canManageOrg(role);
  const filter = canFilter && search.get('show') === 'mine' ? 'mine' : 'all';
  const machines = useResource(`machines:${org}`, () => api.listMachines(org), {
    poll: {
      transitional: (page) => page.items.some((machine) => TRANSITIONAL_STATES.has(machine.state)),
    },
  });
  const visible = (machines.data?.items ?? []).filter(
    (machine) => filter === 'all' || ownerId(machine.owner) === me?.user.id,
  );

  return (
    <Layout org={org} section="machines">
      <div className="page-header">
        <h1>Machines</h1>
        <div className="page-actions">
          {canFilter ? (
            <fieldset className="segmented">
              <legend className="visually-hidden">Show</legend>
              {(['all', 'mine'] as const).map((option) => (
                <button
                  key={option}
                  type="button"
                  aria-pressed={filter === option}
                  className={filter === option ? 'segment active' : 'segment'}
                  onClick={() =>
                    navigate(`${pathTo('orgs', org)}${option === 'mine' ? '?show=mine' : ''}`, {
                      replace: true,
                    })
                  }
                >
                  {option === 'all' ? 'All' : 'Mine'}
                </button>
              ))}
            </fieldset>
          ) : null}
          <Link className="button button-primary" href={pathTo('orgs', org, 'new-machine')}>
            New machine
          </Link>
        </div>
      </div>
      {machines.error && !machines.data ? (
        <ErrorNotice error={machines.error} retry={machines.reload} />
      ) : !machines.data ? (
        <Loading what="machines" />
      ) : visible.length === 0 ? (
        <Empty title={filter === 'mine' ? 'You have no machines here' : 'No machines yet'}>
          <p>A machine is a persistent Linux workspace with a terminal and its own URL.</p>
          <Link className="button button-primary" href={pathTo('orgs', org, 'new-machine')}>
            Create a machine
          </Link>
        </Empty>
      ) : (
        <>
          {machines.error ? <ErrorNotice error={machines.error} /> : null}
          <MachineTable org={org} machines={visible} />
        </>
      )}
    </Layout>
  );
}

function MachineTable({ org, machines }: { org: string; machines: Machine[] }) {
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Machines">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col">Owner</th>
            <th scope="col">Size</th>
            <th scope="col">Region</th>
            <th scope="col">Runtime</th>
            <th scope="col">URL</th>
          </tr>
        </thead>
        <tbody>
          {machines.map((machine) => (
            <tr key={machine.id} data-machine={machine.name}>
              <td data-label="Name">
                <Link href={pathTo('orgs', org, 'machines', machine.name)} className="strong">
                  {machine.name}
                </Link>
              </td>
              <td data-label="State">
                <StateBadge state={machine.state} />
              </td>
              <td data-label="Owner">{ownerLabel(machine.owner)}</td>
              <td data-label="Size">{machine.size ?? '—'}</td>
              <td data-label="Region">{machine.region ?? '—'}</td>
              <td data-label="Runtime">{machine.runtime ?? '—'}</td>
              <td data-label="URL" className="url-cell">
                {machine.urls?.app ? (
                  <a href={machine.urls.app} target="_blank" rel="noreferrer">
                    {machine.urls.app.replace(/^https?:\/\//, '')}
                  </a>
                ) : (
                  '—'
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
