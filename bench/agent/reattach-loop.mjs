// Child process of run.mjs: reattaches to one session in a loop until stdin closes, so the
// echo measured in the parent is not slowed by this client's own parsing.
//   BENCH_AGENT_URL=ws://host:port BENCH_AGENT_TOKEN=... node reattach-loop.mjs <session>
import WebSocket from 'ws';

const [id] = process.argv.slice(2);
let stop = false;
process.stdin.on('end', () => {
  stop = true;
});
process.stdin.resume();

let count = 0;
while (!stop) {
  await new Promise((resolve) => {
    const ws = new WebSocket(
      `${process.env.BENCH_AGENT_URL}/v1/sessions/${id}/attach?history=1000`,
      {
        headers: { authorization: `Bearer ${process.env.BENCH_AGENT_TOKEN}` },
      },
    );
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
  count++;
}
process.stdout.write(`${count}\n`);
