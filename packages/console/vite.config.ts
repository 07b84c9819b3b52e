import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run dev -w @snapvm/console` serves the console with hot reload and forwards the API
// (and terminal WebSockets) to a running `snapvm serve`, so the browser sees one origin as it
// does in production, where the server itself serves dist/.
const api = process.env.SNAPVM_DEV_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: { proxy: { '/api': { target: api, ws: true } } },
});
