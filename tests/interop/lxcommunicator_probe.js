// Logs in to a (simulated) Miniserver with Loxone's own lxcommunicator, downloads the structure,
// enables updates and counts events per table for a few seconds; prints one JSON line.
// Usage: node lxcommunicator_probe.js NODE_MODULES_DIR PORT USER PASSWORD
const path = require("path");
global.LxCommunicator = require(path.join(process.argv[2], "lxcommunicator"));
const [port, user, password] = process.argv.slice(3);
const WebSocketConfig = LxCommunicator.WebSocketConfig;
const result = { events: {}, closed: null };
const config = new WebSocketConfig(
  WebSocketConfig.protocol.WS, "098802e1-02b4-603c-ffffeee000d80cfd", "interop-test",
  WebSocketConfig.permission.APP, false);
config.delegate = {
  socketOnEventReceived: (socket, events, type) => {
    result.events[type] = (result.events[type] || 0) + events.length;
  },
  socketOnConnectionClosed: (socket, code) => { result.closed = code; },
  socketOnTokenReceived: (socket, token) => { result.tokenRights = token.tokenRights; },
};
const socket = new LxCommunicator.WebSocket(config);
const finish = (error) => {
  result.error = error ? String(error) : null;
  console.log(JSON.stringify(result));
  process.exit(error ? 1 : 0);
};
socket.open("127.0.0.1:" + port, user, password)
  .then(() => socket.send("jdev/sps/LoxAPPversion3"))
  .then((reply) => { result.version = reply.LL.value; return socket.send("data/LoxAPP3.json"); })
  .then((file) => {
    const doc = typeof file === "string" ? JSON.parse(file) : file;
    result.controls = Object.keys(doc.controls || {}).length;
    result.lastModified = doc.lastModified;
    return socket.send("jdev/sps/enablebinstatusupdate");
  })
  .then((reply) => {
    result.enableCode = String(reply.LL.Code || reply.LL.code);
    // lxcommunicator sends keepalive every few seconds and gives up on a late answer: stay long
    // enough for several rounds.
    setTimeout(() => { socket.close(); finish(null); }, 6000);
  })
  .catch(finish);
