import { serviceNameSchema } from '@snapvm/protocol';
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { api, type Service, type ServiceDefinitionInput } from '../lib/api.js';
import { ApiError } from '../lib/api-client.js';
import { Backoff, RECONNECT_BACKOFF } from '../lib/backoff.js';
import { formatDuration } from '../lib/format.js';
import { joinCommandLine, splitCommandLine } from '../lib/shell-words.js';
import { useForm } from '../lib/use-form.js';
import { useResource } from '../lib/use-resource.js';
import { FormError, SelectField, SubmitButton, TextField } from './Form.js';
import { Empty, ErrorNotice, errorMessage, Loading } from './States.js';

// The machine's supervised programs: what runs, whether it is up and for how long, how often
// it restarted, and its output. Definitions live in the machine, so they survive restarts.

const BUSY = new Set(['starting', 'stopping', 'backoff']);
const TONE: Record<string, string> = {
  ready: 'good',
  running: 'good',
  starting: 'busy',
  stopping: 'busy',
  backoff: 'bad',
  failed: 'bad',
  stopped: 'idle',
};

export function Services({ org, machine }: { org: string; machine: string }) {
  const services = useResource(`services:${org}/${machine}`, () => api.listServices(org, machine), {
    poll: { transitional: (page) => page.items.some((service) => BUSY.has(service.status)) },
  });
  const [editing, setEditing] = useState<Service | 'new' | null>(null);
  const [logsOf, setLogsOf] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [pending, setPending] = useState<string | null>(null);
  // The machine is visible, so a 404 here means this server has no services API yet.
  const unsupported = services.error instanceof ApiError && services.error.status === 404;

  const act = async (name: string, action: () => Promise<unknown>) => {
    setPending(name);
    setError(null);
    try {
      await action();
      services.reload();
    } catch (failure) {
      setError(failure);
    } finally {
      setPending(null);
    }
  };

  return (
    <section className="card" aria-labelledby="services-heading">
      <div className="card-header">
        <h2 id="services-heading">Services</h2>
        {unsupported || editing === 'new' ? null : (
          <button type="button" className="button" onClick={() => setEditing('new')}>
            Add service
          </button>
        )}
      </div>
      {error ? <ErrorNotice error={error} /> : null}
      {editing ? (
        <ServiceForm
          org={org}
          machine={machine}
          service={editing === 'new' ? null : editing}
          onDone={() => {
            setEditing(null);
            services.reload();
          }}
        />
      ) : null}
      {unsupported ? (
        <p className="muted">Services are not available on this server yet.</p>
      ) : services.error && !services.data ? (
        <ErrorNotice error={services.error} retry={services.reload} />
      ) : !services.data ? (
        <Loading what="services" />
      ) : services.data.items.length === 0 && !editing ? (
        <Empty title="No services">
          <p>
            A service is a program the machine keeps running and starts again after a restart, e.g.{' '}
            <code>python3 -m http.server 8080</code>.
          </p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Services">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Up for</th>
                <th scope="col">Restarts</th>
                <th scope="col">Command</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {services.data.items.map((service) => {
                const up = service.status === 'running' || service.status === 'ready';
                return (
                  <tr key={service.name} data-service={service.name}>
                    <td data-label="Name" className="strong">
                      {service.name}
                      {service.httpPort ? <span className="chip">:{service.httpPort}</span> : null}
                    </td>
                    <td data-label="Status">
                      <span
                        className={`badge badge-${TONE[service.status] ?? 'idle'}`}
                        data-status={service.status}
                      >
                        {service.status}
                      </span>
                      {service.status === 'failed' && service.exitCode !== null ? (
                        <span className="muted"> exit {service.exitCode}</span>
                      ) : null}
                    </td>
                    <td data-label="Up for">{up ? uptime(service.startedAt) : '—'}</td>
                    <td data-label="Restarts">{service.restartCount}</td>
                    <td data-label="Command">
                      <code>{joinCommandLine([service.command, ...(service.args ?? [])])}</code>
                    </td>
                    <td className="actions">
                      <div className="row-actions">
                        {up || service.status === 'starting' || service.status === 'backoff' ? (
                          <button
                            aria-label={`Stop ${service.name}`}
                            type="button"
                            className="button button-small"
                            disabled={pending === service.name}
                            onClick={() =>
                              act(service.name, () =>
                                api.serviceAction(org, machine, service.name, 'stop'),
                              )
                            }
                          >
                            Stop
                          </button>
                        ) : (
                          <button
                            aria-label={`Start ${service.name}`}
                            type="button"
                            className="button button-small"
                            disabled={pending === service.name}
                            onClick={() =>
                              act(service.name, () =>
                                api.serviceAction(org, machine, service.name, 'start'),
                              )
                            }
                          >
                            Start
                          </button>
                        )}
                        <button
                          aria-label={`Restart ${service.name}`}
                          type="button"
                          className="button button-small"
                          disabled={pending === service.name}
                          onClick={() =>
                            act(service.name, () =>
                              api.serviceAction(org, machine, service.name, 'restart'),
                            )
                          }
                        >
                          Restart
                        </button>
                        <button
                          aria-label={`Logs ${service.name}`}
                          type="button"
                          className="button button-small"
                          aria-pressed={logsOf === service.name}
                          onClick={() => setLogsOf(logsOf === service.name ? null : service.name)}
                        >
                          Logs
                        </button>
                        <button
                          aria-label={`Edit ${service.name}`}
                          type="button"
                          className="button button-small"
                          onClick={() => setEditing(service)}
                        >
                          Edit
                        </button>
                        <button
                          aria-label={`Delete ${service.name}`}
                          type="button"
                          className="button button-small button-danger"
                          disabled={pending === service.name}
                          onClick={() => {
                            if (
                              window.confirm(
                                `Delete the service ${service.name}? It is stopped first.`,
                              )
                            ) {
                              act(service.name, async () => {
                                await api.deleteService(org, machine, service.name);
                                if (logsOf === service.name) setLogsOf(null);
                              });
                            }
                          }}
                        >
                          Delete
                        </button>
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {logsOf ? (
        <LogView org={org} machine={machine} service={logsOf} onClose={() => setLogsOf(null)} />
      ) : null}
    </section>
  );
}

function uptime(startedAt: string | null): string {
  if (!startedAt) return '—';
  const seconds = (Date.now() - new Date(startedAt).getTime()) / 1000;
  return Number.isFinite(seconds) ? formatDuration(Math.max(0, seconds)) : '—';
}

const RESTART_POLICIES = ['always', 'on-failure', 'never'] as const;

function ServiceForm({
  org,
  machine,
  service,
  onDone,
}: {
  org: string;
  machine: string;
  service: Service | null;
  onDone: () => void;
}) {
  const form = useForm(
    {
      name: service?.name ?? '',
      commandLine: service ? joinCommandLine([service.command, ...(service.args ?? [])]) : '',
      cwd: service?.cwd ?? '',
      httpPort: service?.httpPort ? String(service.httpPort) : '',
      restart: service?.restart ?? 'always',
      dependsOn: (service?.dependsOn ?? []).join(', '),
      env: Object.entries(service?.env ?? {})
        .map(([key, value]) => `${key}=${value}`)
        .join('\n'),
    },
    {
      name: (value) => {
        const result = serviceNameSchema.safeParse(value);
        return result.success ? null : `Name: ${result.error.issues[0]?.message ?? 'not valid'}`;
      },
      commandLine: (value) => {
        try {
          return splitCommandLine(value).length > 0 ? null : 'Command is required';
        } catch (error) {
          return `Command: ${errorMessage(error)}`;
        }
      },
      httpPort: (value) =>
        value === '' || (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65535)
          ? null
          : 'Port must be a number from 1 to 65535',
      env: (value) => {
        const bad = value
          .split('\n')
          .map((line) => line.trim())
          .find((line) => line && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(line));
        return bad ? `Each line is NAME=value; "${bad}" is not` : null;
      },
    },
  );
  const submit = form.handleSubmit(async (values) => {
    const [command, ...args] = splitCommandLine(values.commandLine) as [string, ...string[]];
    const env: Record<string, string> = {};
    for (const line of values.env.split('\n')) {
      const trimmed = line.trim();
      if (!trimmed) continue;
      const at = trimmed.indexOf('=');
      env[trimmed.slice(0, at)] = trimmed.slice(at + 1);
    }
    const definition: ServiceDefinitionInput = {
      command,
      args,
      env,
      restart: values.restart as (typeof RESTART_POLICIES)[number],
      dependsOn: values.dependsOn
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    };
    if (values.cwd.trim()) definition.cwd = values.cwd.trim();
    if (values.httpPort) definition.httpPort = Number(values.httpPort);
    await api.putService(org, machine, values.name, definition);
    onDone();
  });
  return (
    <form onSubmit={submit} noValidate className="service-form" aria-label="Service definition">
      <h3>{service ? `Edit ${service.name}` : 'New service'}</h3>
      {service ? (
        <p className="field-hint">A running service restarts with the new definition.</p>
      ) : null}
      <FormError message={form.formError} />
      <div className="form-grid">
        <TextField
          label="Name"
          autoComplete="off"
          spellCheck={false}
          readOnly={service !== null}
          error={form.errorFor('name')}
          {...form.bind('name')}
        />
        <TextField
          label="Command"
          autoComplete="off"
          spellCheck={false}
          placeholder="python3 -m http.server 8080"
          error={form.errorFor('commandLine')}
          {...form.bind('commandLine')}
        />
        <TextField
          label="Working directory"
          autoComplete="off"
          spellCheck={false}
          placeholder="home directory"
          error={form.errorFor('cwd')}
          {...form.bind('cwd')}
        />
        <TextField
          label="HTTP port"
          inputMode="numeric"
          autoComplete="off"
          hint="Set it when this service answers on the machine's URL."
          error={form.errorFor('httpPort')}
          {...form.bind('httpPort')}
        />
        <SelectField label="Restart" error={form.errorFor('restart')} {...form.bind('restart')}>
          {RESTART_POLICIES.map((policy) => (
            <option key={policy} value={policy}>
              {policy}
            </option>
          ))}
        </SelectField>
        <TextField
          label="Starts after"
          autoComplete="off"
          spellCheck={false}
          placeholder="db, cache"
          error={form.errorFor('dependsOn')}
          {...form.bind('dependsOn')}
        />
      </div>
      <div className="field">
        <label htmlFor="service-env">Environment (NAME=value per line)</label>
        <textarea
          id="service-env"
          rows={3}
          spellCheck={false}
          name="env"
          value={form.values.env}
          aria-invalid={form.errorFor('env') ? true : undefined}
          onChange={(event) => form.setValue('env', event.target.value)}
        />
        {form.errorFor('env') ? (
          <p className="field-error" role="alert">
            {form.errorFor('env')}
          </p>
        ) : null}
      </div>
      <div className="button-row">
        <SubmitButton busy={form.busy}>{service ? 'Save' : 'Create and start'}</SubmitButton>
        <button type="button" className="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

const MAX_LOG_CHARS = 200_000;

/** The service's output, following new lines as they come; reconnects with backoff. */
function LogView({
  org,
  machine,
  service,
  onClose,
}: {
  org: string;
  machine: string;
  service: string;
  onClose: () => void;
}) {
  const [text, setText] = useState('');
  const [status, setStatus] = useState<'loading' | 'following' | 'retrying'>('loading');
  const [error, setError] = useState<string | null>(null);
  const preRef = useRef<HTMLPreElement>(null);
  const stickToBottom = useRef(true);

  useEffect(() => {
    const controller = new AbortController();
    const backoff = new Backoff(RECONNECT_BACKOFF);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const follow = async () => {
      while (!controller.signal.aborted) {
        try {
          const response = await api.serviceLogs(org, machine, service, 500, controller.signal);
          const reader = response.body?.getReader();
          const decoder = new TextDecoder();
          // Each connection starts from the tail again, so replace rather than append.
          let content = '';
          setText('');
          setStatus('following');
          setError(null);
          backoff.reset();
          while (reader) {
            const { done, value } = await reader.read();
            if (done) break;
            content = (content + decoder.decode(value, { stream: true })).slice(-MAX_LOG_CHARS);
            setText(content);
          }
          // A server that does not hold the stream open: ask again shortly.
          await sleep(2000);
        } catch (failure) {
          if (controller.signal.aborted) return;
          setError(errorMessage(failure));
          setStatus('retrying');
          await sleep(backoff.next());
        }
      }
    };
    follow();
    return () => controller.abort();
  }, [org, machine, service]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll after each new chunk
  useLayoutEffect(() => {
    const pre = preRef.current;
    if (pre && stickToBottom.current) pre.scrollTop = pre.scrollHeight;
  }, [text]);

  return (
    <div className="log-view">
      <div className="card-header">
        <h3>
          Logs of {service}{' '}
          <span className="muted">
            {status === 'following' ? '· following' : status === 'retrying' ? '· reconnecting' : ''}
          </span>
        </h3>
        <button type="button" className="button button-small" onClick={onClose}>
          Close
        </button>
      </div>
      {error ? <p className="field-error">{error}</p> : null}
      <pre
        ref={preRef}
        className="log-output"
        role="log"
        aria-label={`Logs of ${service}`}
        onScroll={(event) => {
          const pre = event.currentTarget;
          stickToBottom.current = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
        }}
      >
        {text || (status === 'loading' ? 'Loading…' : 'No output yet.')}
      </pre>
    </div>
  );
}
