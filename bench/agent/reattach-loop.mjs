// Child process of run.mjs: reattaches to one session in a loop until stdin closes (printing
// `ready`, then a dot per reattach), so the
// echo measured in the parent is not slowed by this client's own parsing. A key typed before
// each reattach changes the screen, so none of them is served from the snapshot cache.
// BENCH_REATTACH_EVERY_MS paces it (one reattach per that many ms) instead of full speed.
//   BENCH_AGENT_URL=ws://host:port BENCH_AGENT_TOKEN=... node reattach-loop.mjs <session>
import WebSocket from 'ws';

const [id] = process.argv.slice(2);
let stop = false;
process.stdin.on('end', () => {
  stop = true;
});
process.stdin.resume();

const url = `${process.env.BENCH_AGENT_URL}/v1/sessions/${id}/attach`;
const headers = { authorization: `Bearer ${process.env.BENCH_AGENT_TOKEN}` };
const typist = new WebSocket(`${url}?history=0`, { headers });
await new Promise((resolve) => typist.once('open', resolve));
// Its own snapshot arrives first and may contain the letter; only later frames are echoes.
await new Promise((resolve) => setTimeout(resolve, 300));
const typeKey = () =>
  new Promise((resolve) => {
    const onEcho = (d, isBinary) => {
      if (isBinary && d.includes(0x79)) {
        typist.off('message', onEcho);
        setTimeout(resolve, 20);
      }
    };
    typist.on('message', onEcho);
    typist.send(Buffer.from('y'), { binary: true });
  });

process.stdout.write('ready\n');
const everyMs = Number(process.env.BENCH_REATTACH_EVERY_MS ?? 0);
while (!stop) {
  const began = performance.now();
  await typeKey();
  await new Promise((resolve) => {
    const ws = new WebSocket(`${url}?history=1000`, { headers });
    let want = -1;
    let got = 0;
    ws.on('message', (d, isBinary) => {
      if (!isBinary) {
        const m = JSON.parse(d.toString());
        if (m.type === 'attached') want = m.snapshotBytes;
      } else got += d.length;
      if (want >= 0 && got >= want) {
        ws.close();
        resolve();
      }
    });
    ws.on('error', resolve);
  });
  process.stdout.write('.');
  const left = everyMs - (performance.now() - began);
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
}
typist.close();
