import { AuthPage } from '../components/AuthPage.js';
import { TextField } from '../components/Form.js';
import { api } from '../lib/api.js';

const required = (label: string) => (value: string) =>
  value.trim() ? null : `${label} is required`;

export function SignIn() {
  return (
    <AuthPage
      title="Sign in"
      initial={{ email: '', password: '' }}
      checks={{ email: required('Email'), password: required('Password') }}
      send={({ email, password }) => api.signIn({ email: email.trim(), password })}
      submitLabel="Sign in"
      other={{ prompt: 'New to SnapVM?', path: '/signup', label: 'Create an account' }}
    >
      {(form) => (
        <>
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
        </>
      )}
    </AuthPage>
  );
}
