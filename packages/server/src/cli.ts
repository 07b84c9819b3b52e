// Placeholder entry point; the control-plane issue replaces it.
console.log('snapvm');
