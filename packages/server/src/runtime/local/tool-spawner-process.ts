// The tool helper process (tool-spawner.ts): runs each request it is sent and answers with the
// result. It exits with the server (its IPC channel closes).
import { runHere, type ToolRequest } from './tool-spawner.js';

process.on('message', (request: ToolRequest) => {
  runHere(request, (result) => process.send?.(result));
});
process.on('disconnect', () => process.exit(0));
