// Sources for apps the gateway tests run inside a machine (plain Node, no dependencies).

/**
 * Statements that make the http.Server named `server` answer WebSocket upgrades and echo each
 * small text frame back as `echo: <text>`. The app source must import createHash.
 */
export function webSocketEcho(server: string): string {
  return `
${server}.on('upgrade', (req, socket) => {
  const accept = createHash('sha1')
    .update(req.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
    'Sec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
  socket.on('data', (frame) => {
    const length = frame[1] & 127;
    if ((frame[0] & 15) !== 1 || length > 125) return socket.destroy();
    const mask = frame.subarray(2, 6);
    const text = Buffer.from(frame.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]));
    const reply = Buffer.concat([Buffer.from('echo: '), text]);
    socket.write(Buffer.concat([Buffer.from([0x81, reply.length]), reply]));
  });
  // Half-open otherwise (the server's sockets allow it), and the gateway's with it.
  socket.on('end', () => socket.end());
});
`;
}
