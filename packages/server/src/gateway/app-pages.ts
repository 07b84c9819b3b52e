// The few HTML pages a machine host serves itself: waking, nothing listening, not allowed.
// Self-contained (no console assets): they appear on the machine's origin.

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

function page(title: string, body: string, script = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f2f2f2;padding:0 .25rem}.muted{color:#666}</style></head>
<body>${body}${script ? `<script>${script}</script>` : ''}</body></html>
`;
}

/** Shown to browser navigations while the machine wakes; reloads itself once it is up. */
export function wakePage(machine: string, state: string): string {
  const script = `
const status = document.getElementById('status');
const started = Date.now();
async function poll() {
  try {
    const res = await fetch('/__snapvm/status', { cache: 'no-store' });
    const body = await res.json();
    if (body.state === 'started') { status.textContent = 'Ready, loading…'; location.reload(); return; }
    if (body.state === 'failed') { status.textContent = 'The machine could not be started: ' + (body.message || 'see its events in the console.'); return; }
    status.textContent = 'Waking machine… (' + body.state + ', ' + Math.round((Date.now() - started) / 1000) + ' s)';
  } catch { status.textContent = 'Waking machine… (waiting for the server)'; }
  setTimeout(poll, 500);
}
setTimeout(poll, 300);`;
  return page(
    `Waking ${machine}`,
    `<h1>Waking <code>${escapeHtml(machine)}</code></h1>
<p id="status">Waking machine… (it was ${escapeHtml(state)})</p>
<p class="muted">This page reloads by itself when the machine is ready.</p>
<noscript><meta http-equiv="refresh" content="2"></noscript>`,
    script,
  );
}

export function nothingListeningPage(machine: string, port: number): string {
  return page(
    `Nothing listening on port ${port}`,
    `<h1>502: nothing is listening on port ${port}</h1>
<p>The machine <code>${escapeHtml(machine)}</code> is running, but no program accepts
connections on port <code>${port}</code> inside it.</p>
<p class="muted">Start your server on that port (for example
<code>python3 -m http.server ${port}</code>), define a service that claims it, or change the
machine's HTTP port.</p>`,
  );
}

export function messagePage(status: number, title: string, message: string): string {
  return page(title, `<h1>${status}: ${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}
