import { useState } from 'react';
import { CopyField } from '../components/CopyButton.js';
import { FormError, SelectField, SubmitButton, TextField } from '../components/Form.js';
import { Layout } from '../components/Layout.js';
import { Empty, ErrorNotice, Loading } from '../components/States.js';
import { api, canManageOrg, type Invitation, type Member, ROLES, type Role } from '../lib/api.js';
import { useSession } from '../lib/session-context.js';
import { useForm } from '../lib/use-form.js';
import { useResource } from '../lib/use-resource.js';

export function Members({ org }: { org: string }) {
  const { me, refresh } = useSession();
  const role = me?.orgs.find((candidate) => candidate.slug === org)?.role;
  const manage = canManageOrg(role);
  const members = useResource(`members:${org}`, () => api.listMembers(org));
  const [actionError, setActionError] = useState<unknown>(null);
  const [pending, setPending] = useState<string | null>(null);

  const act = async (userId: string, action: () => Promise<unknown>) => {
    setPending(userId);
    setActionError(null);
    try {
      await action();
      members.reload();
      // Changing one's own role or leaving changes what this person may see.
      if (userId === me?.user.id) await refresh();
    } catch (error) {
      setActionError(error);
    } finally {
      setPending(null);
    }
  };

  return (
    <Layout org={org} section="members">
      <div className="page-header">
        <h1>Members</h1>
      </div>
      {manage ? <InviteForm org={org} /> : null}
      {actionError ? <ErrorNotice error={actionError} /> : null}
      {members.error && !members.data ? (
        <ErrorNotice error={members.error} retry={members.reload} />
      ) : !members.data ? (
        <Loading what="members" />
      ) : members.data.items.length === 0 ? (
        <Empty title="No members yet" />
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Members">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                {manage ? (
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {members.data.items.map((member: Member) => (
                <tr key={member.user.id}>
                  <td data-label="Name">
                    {member.user.name}
                    {member.user.id === me?.user.id ? <span className="muted"> (you)</span> : null}
                  </td>
                  <td data-label="Email">{member.user.email}</td>
                  <td data-label="Role">
                    {manage ? (
                      <select
                        aria-label={`Role of ${member.user.email}`}
                        value={member.role}
                        disabled={pending === member.user.id}
                        onChange={(event) =>
                          act(member.user.id, () =>
                            api.changeRole(org, member.user.id, event.target.value as Role),
                          )
                        }
                      >
                        {ROLES.map((option) => (
                          <option key={option} value={option}>
                            {option}
                          </option>
                        ))}
                      </select>
                    ) : (
                      <span className="role">{member.role}</span>
                    )}
                  </td>
                  {manage ? (
                    <td className="actions">
                      <button
                        type="button"
                        className="button button-small button-danger"
                        disabled={pending === member.user.id}
                        onClick={() => {
                          if (window.confirm(`Remove ${member.user.email} from ${org}?`)) {
                            act(member.user.id, () => api.removeMember(org, member.user.id));
                          }
                        }}
                      >
                        Remove
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}

function InviteForm({ org }: { org: string }) {
  const [invitation, setInvitation] = useState<(Invitation & { email: string; role: Role }) | null>(
    null,
  );
  const form = useForm(
    { email: '', role: 'member' },
    {
      email: (value) =>
        /^[^\s@]+@[^\s@]+$/.test(value.trim())
          ? null
          : 'Enter an email address like you@example.com',
    },
  );
  const submit = form.handleSubmit(async ({ email, role }) => {
    const created = await api.invite(org, { email: email.trim(), role: role as Role });
    setInvitation({ ...created, email: email.trim(), role: role as Role });
    form.setValues({ email: '', role });
  });
  return (
    <section className="card" aria-labelledby="invite-heading">
      <h2 id="invite-heading">Invite someone</h2>
      <form onSubmit={submit} noValidate className="inline-form">
        <TextField
          label="Email"
          type="email"
          autoComplete="off"
          error={form.errorFor('email')}
          {...form.bind('email')}
        />
        <SelectField label="Role" error={form.errorFor('role')} {...form.bind('role')}>
          {ROLES.map((role) => (
            <option key={role} value={role}>
              {role}
            </option>
          ))}
        </SelectField>
        <SubmitButton busy={form.busy}>Create invitation</SubmitButton>
      </form>
      <FormError message={form.formError} />
      {invitation ? (
        <div className="notice notice-success" data-testid="invitation">
          <p>
            Send this link to <strong>{invitation.email}</strong> to join {org} as {invitation.role}
            . It works once, for that email address.
          </p>
          <CopyField label="Invitation link" value={invitation.url} />
        </div>
      ) : null}
    </section>
  );
}
