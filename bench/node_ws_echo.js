// The upstream of the Feed benchmark (bench/feed.py): a Node `ws` server that sends every
// message back on the connection it came from.
// Usage: NODE_PATH=/usr/share/nodejs node bench/node_ws_echo.js PORT
'use strict';
const WebSocket = require('ws');

const port = Number(process.argv[2] || 8791);
const wss = new WebSocket.Server({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => console.log('listening ' + port));
