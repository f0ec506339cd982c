// nodelay.js: preload (node -r) to disable Nagle's algorithm on every
// socket dcmjs-dimse opens; without it each small PDU waits for a
// delayed ACK (about 40 ms; see ../shared/PEERS.md).
'use strict';
const net = require('net');
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  this.setNoDelay(true);
  return connect.apply(this, args);
};
