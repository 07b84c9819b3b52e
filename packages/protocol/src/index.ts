export * from './agent-common.js';
export * from './agent-exec.js';
export * from './agent-services.js';
export * from './agent-sessions.js';
export * from './api.js';
export * from './names.js';
