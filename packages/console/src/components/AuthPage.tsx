import type { ReactNode } from 'react';
import { navigate, safeNextPath, useLocation } from '../lib/router.js';
import { useSession } from '../lib/session-context.js';
import { type Checks, type Form, useForm } from '../lib/use-form.js';
import { FormError, SubmitButton } from './Form.js';
import { AuthLayout } from './Layout.js';
import { Link } from './Link.js';

/**
 * The ways in (sign in, sign up): a form whose accepted submit has set the session cookie, so
 * the session is loaded and the visitor goes on to the page that sent them here (`?next=`),
 * which the link to the other way in keeps.
 */
export function AuthPage<F extends string>({
  title,
  initial,
  checks,
  send,
  submitLabel,
  other,
  children,
}: {
  title: string;
  initial: Record<F, string>;
  checks: Checks<F>;
  send: (values: Record<F, string>) => Promise<unknown>;
  submitLabel: string;
  other: { prompt: string; path: string; label: string };
  children: (form: Form<F>) => ReactNode;
}) {
  const { refresh } = useSession();
  const { search } = useLocation();
  const next = safeNextPath(search.get('next'));
  const form = useForm(initial, checks);
  const submit = form.handleSubmit(async (values) => {
    await send(values);
    await refresh();
    navigate(next, { replace: true });
  });
  const nextQuery = next === '/' ? '' : `?next=${encodeURIComponent(next)}`;
  return (
    <AuthLayout title={title}>
      <form onSubmit={submit} noValidate>
        <FormError message={form.formError} />
        {children(form)}
        <SubmitButton busy={form.busy}>{submitLabel}</SubmitButton>
      </form>
      <p className="auth-switch">
        {other.prompt} <Link href={`${other.path}${nextQuery}`}>{other.label}</Link>
      </p>
    </AuthLayout>
  );
}
