// Placeholder entry point; the agent issue replaces it.
console.log('snapvm-agent');
