import { AuthPage } from '../components/AuthPage.js';
import { TextField } from '../components/Form.js';
import { api } from '../lib/api.js';

const MIN_PASSWORD = 8;

export function SignUp() {
  return (
    <AuthPage
      title="Create your account"
      initial={{ name: '', email: '', password: '' }}
      checks={{
        name: (value) => (value.trim() ? null : 'Name is required'),
        email: (value) =>
          /^[^\s@]+@[^\s@]+$/.test(value.trim())
            ? null
            : 'Enter an email address like you@example.com',
        password: (value) =>
          value.length >= MIN_PASSWORD
            ? null
            : `Password must be at least ${MIN_PASSWORD} characters`,
      }}
      send={({ name, email, password }) =>
        api.signUp({ name: name.trim(), email: email.trim(), password })
      }
      submitLabel="Create account"
      other={{ prompt: 'Already have an account?', path: '/signin', label: 'Sign in' }}
    >
      {(form) => (
        <>
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
        </>
      )}
    </AuthPage>
  );
}
