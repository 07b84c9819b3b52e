import { useState } from 'react';
import { FormError, SubmitButton, TextField } from '../components/Form.js';
import { Layout } from '../components/Layout.js';
import { api } from '../lib/api.js';
import { nameError, slugFromName } from '../lib/name-field.js';
import { navigate, pathTo } from '../lib/router.js';
import { rememberOrg, useSession } from '../lib/session-context.js';
import { useForm } from '../lib/use-form.js';

export function NewOrg() {
  const { me, refresh } = useSession();
  const first = (me?.orgs.length ?? 0) === 0;
  // The slug follows the name until the person edits it themselves.
  const [slugEdited, setSlugEdited] = useState(false);
  const form = useForm(
    { name: '', slug: '' },
    {
      name: (value) => (value.trim() ? null : 'Name is required'),
      slug: (value) => nameError('Slug', value),
    },
  );
  const submit = form.handleSubmit(async ({ name, slug }) => {
    await api.createOrg({ name: name.trim(), slug });
    await refresh();
    rememberOrg(slug);
    navigate(pathTo('orgs', slug), { replace: true });
  });
  const nameBinding = form.bind('name');
  const slugBinding = form.bind('slug');
  return (
    <Layout section="orgs">
      <div className="page-narrow">
        <h1>{first ? 'Create your organization' : 'New organization'}</h1>
        <p className="lead">
          {first
            ? 'Machines, members and billing live in an organization. You can invite your team next.'
            : 'A separate space with its own machines and members.'}
        </p>
        <form onSubmit={submit} noValidate className="card">
          <FormError message={form.formError} />
          <TextField
            label="Organization name"
            autoFocus
            required
            error={form.errorFor('name')}
            {...nameBinding}
            onChange={(event) => {
              nameBinding.onChange(event);
              if (!slugEdited) form.setValue('slug', slugFromName(event.target.value));
            }}
          />
          <TextField
            label="Slug"
            required
            spellCheck={false}
            autoCapitalize="off"
            hint="Used in URLs: lowercase letters, digits and single hyphens, at most 30."
            error={form.errorFor('slug')}
            {...slugBinding}
            onChange={(event) => {
              setSlugEdited(true);
              slugBinding.onChange(event);
            }}
          />
          <SubmitButton busy={form.busy}>Create organization</SubmitButton>
        </form>
      </div>
    </Layout>
  );
}
