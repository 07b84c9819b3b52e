// Connecting to an agent's unix socket without trusting its path. The socket lives in a
// directory that root inside the machine can write, so it could be swapped for a symlink to a
// host socket (the database, another service) and the server, as host root, would follow it
// and hand over the machine's token. Opening the final component with O_PATH|O_NOFOLLOW pins
// the inode, which must be a socket owned by the machine's uid range, and the connection goes
// through /proc/self/fd so nothing is resolved a second time.
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { Socket } from 'node:net';

// Not exported by node:fs; the value of O_PATH on Linux (all architectures Node supports).
const O_PATH = 0o10000000;

export function connectAgentSocket(socketPath: string, uids: { min: number; max: number }): Socket {
  let fd: number;
  try {
    fd = openSync(socketPath, O_PATH | constants.O_NOFOLLOW);
  } catch (err) {
    return failedSocket(err as Error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isSocket() || stat.uid < uids.min || stat.uid >= uids.max) {
      closeSync(fd);
      return failedSocket(new Error(`${socketPath} is not the machine's agent socket`));
    }
  } catch (err) {
    closeSync(fd);
    return failedSocket(err as Error);
  }
  const socket = new Socket();
  const release = () => {
    if (fd >= 0) closeSync(fd);
    fd = -1;
  };
  socket.once('connect', release);
  socket.once('close', release);
  socket.connect(`/proc/self/fd/${fd}`);
  return socket;
}

function failedSocket(err: Error): Socket {
  const socket = new Socket();
  process.nextTick(() => socket.destroy(err));
  return socket;
}
