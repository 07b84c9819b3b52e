import { FormError, SelectField, SubmitButton, TextField } from '../components/Form.js';
import { Layout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { api, MACHINE_SIZES, RUNTIMES, sizeLabel } from '../lib/api.js';
import { nameError } from '../lib/name-field.js';
import { navigate, pathTo } from '../lib/router.js';
import { useForm } from '../lib/use-form.js';

// Size, region and runtime are left to the server's defaults unless chosen.

export function NewMachine({ org }: { org: string }) {
  const form = useForm(
    { name: '', size: '', region: '', runtime: '' },
    { name: (value) => nameError('Name', value) },
  );
  const submit = form.handleSubmit(async ({ name, size, region, runtime }) => {
    const body: { name: string; size?: string; region?: string; runtime?: string } = { name };
    if (size) body.size = size;
    if (region.trim()) body.region = region.trim();
    if (runtime) body.runtime = runtime;
    const machine = await api.createMachine(org, body);
    navigate(pathTo('orgs', org, 'machines', machine.name ?? name));
  });
  const nameValue = form.values.name;
  return (
    <Layout org={org} section="machines">
      <div className="page-narrow">
        <p className="breadcrumb">
          <Link href={pathTo('orgs', org)}>Machines</Link> /
        </p>
        <h1>New machine</h1>
        <form onSubmit={submit} noValidate className="card">
          <FormError message={form.formError} />
          <TextField
            label="Name"
            autoFocus
            required
            spellCheck={false}
            autoCapitalize="off"
            autoComplete="off"
            maxLength={60}
            hint={
              nameValue && !form.errorFor('name')
                ? `Its URL will start with ${nameValue}--${org}.`
                : 'Lowercase letters, digits and single hyphens; starts with a letter; at most 30.'
            }
            error={form.errorFor('name')}
            {...form.bind('name')}
          />
          <SelectField label="Size" error={form.errorFor('size')} {...form.bind('size')}>
            <option value="">Default</option>
            {MACHINE_SIZES.map((size) => (
              <option key={size} value={size}>
                {sizeLabel(size)}
              </option>
            ))}
          </SelectField>
          <TextField
            label="Region"
            placeholder="Default"
            autoComplete="off"
            error={form.errorFor('region')}
            {...form.bind('region')}
          />
          <SelectField label="Runtime" error={form.errorFor('runtime')} {...form.bind('runtime')}>
            <option value="">Default</option>
            {RUNTIMES.map((runtime) => (
              <option key={runtime} value={runtime}>
                {runtime}
              </option>
            ))}
          </SelectField>
          <div className="button-row">
            <SubmitButton busy={form.busy}>Create machine</SubmitButton>
            <Link className="button" href={pathTo('orgs', org)}>
              Cancel
            </Link>
          </div>
        </form>
      </div>
    </Layout>
  );
}
