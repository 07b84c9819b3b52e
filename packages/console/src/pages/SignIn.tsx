import { FormError, SubmitButton, TextField } from '../components/Form.js';
import { AuthLayout } from '../components/Layout.js';
import { Link } from '../components/Link.js';
import { api } from '../lib/api.js';
import { navigate, safeNextPath, useLocation } from '../lib/router.js';
import { useSession } from '../lib/session-context.js';
import { useForm } from '../lib/use-form.js';

const required = (label: string) => (value: string) =>
  value.trim() ? null : `${label} is required`;

export function SignIn() {
  const { refresh } = useSession();
  const { search } = useLocation();
  const next = safeNextPath(search.get('next'));
  const form = useForm(
    { email: '', password: '' },
    { email: required('Email'), password: required('Password') },
  );
  const submit = form.handleSubmit(async ({ email, password }) => {
    await api.signIn({ email: email.trim(), password });
    await refresh();
    navigate(next, { replace: true });
  });
  const nextQuery = next === '/' ? '' : `?next=${encodeURIComponent(next)}`;
  return (
    <AuthLayout title="Sign in">
      <form onSubmit={submit} noValidate>
        <FormError message={form.formError} />
        <TextField
          label="Email"
          type="email"
          autoComplete="email"
          autoFocus
          required
          error={form.errorFor('email')}
          {...form.bind('email')}
        />
        <TextField
          label="Password"
          type="password"
          autoComplete="current-password"
          required
          error={form.errorFor('password')}
          {...form.bind('password')}
        />
        <SubmitButton busy={form.busy}>Sign in</SubmitButton>
      </form>
      <p className="auth-switch">
        New to SnapVM? <Link href={`/signup${nextQuery}`}>Create an account</Link>
      </p>
    </AuthLayout>
  );
}
