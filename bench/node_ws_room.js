// The peer for the broadcast benchmark: a Node `ws` server speaking the ChatRoom protocol
// (GET /room/<name> upgrades; every message goes to every member, the sender included).
// Usage: NODE_PATH=/usr/share/nodejs node bench/node_ws_room.js PORT
'use strict';
const http = require('http');
const WebSocket = require('ws');

const port = Number(process.argv[2] || 8790);
const rooms = new Map();
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocket.Server({ noServer: true, perMessageDeflate: false });

server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    const name = req.url;
    let room = rooms.get(name);
    if (!room) rooms.set(name, (room = new Set()));
    room.add(ws);
    ws.on('message', (data, isBinary) => {
      for (const member of room) member.send(data, { binary: isBinary });
    });
    ws.on('close', () => room.delete(ws));
  });
});
server.listen(port, '127.0.0.1', () => console.log('listening ' + port));
