import { FormError, SubmitButton, TextField } from '../components/Form.js';
import { AuthLayout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { api } from '../lib/api.js';
import { navigate, safeNextPath, useLocation } from '../lib/router.js';
import { useSession } from '../lib/session-context.js';
import { useForm } from '../lib/use-form.js';

const MIN_PASSWORD = 8;

export function SignUp() {
  const { refresh } = useSession();
  const { search } = useLocation();
  const next = safeNextPath(search.get('next'));
  const form = useForm(
    { name: '', email: '', password: '' },
    {
      name: (value) => (value.trim() ? null : 'Name is required'),
      email: (value) =>
        /^[^\s@]+@[^\s@]+$/.test(value.trim())
          ? null
          : 'Enter an email address like you@example.com',
      password: (value) =>
        value.length >= MIN_PASSWORD
          ? null
          : `Password must be at least ${MIN_PASSWORD} characters`,
    },
  );
  const submit = form.handleSubmit(async ({ name, email, password }) => {
    await api.signUp({ name: name.trim(), email: email.trim(), password });
    await refresh();
    navigate(next, { replace: true });
  });
  const nextQuery = next === '/' ? '' : `?next=${encodeURIComponent(next)}`;
  return (
    <AuthLayout title="Create your account">
      <form onSubmit={submit} noValidate>
        <FormError message={form.formError} />
        <TextField
          label="Name"
          autoComplete="name"
          autoFocus
          required
          error={form.errorFor('name')}
          {...form.bind('name')}
        />
        <TextField
          label="Email"
          type="email"
          autoComplete="email"
          required
          error={form.errorFor('email')}
          {...form.bind('email')}
        />
        <TextField
          label="Password"
          type="password"
          autoComplete="new-password"
          required
          hint={`At least ${MIN_PASSWORD} characters.`}
          error={form.errorFor('password')}
          {...form.bind('password')}
        />
        <SubmitButton busy={form.busy}>Create account</SubmitButton>
      </form>
      <p className="auth-switch">
        Already have an account? <Link href={`/signin${nextQuery}`}>Sign in</Link>
      </p>
    </AuthLayout>
  );
}
