// Preloaded into the Agents Playground (NODE_OPTIONS=--require): its server calls
// server.listen(port, cb), i.e. every interface, and has no host option. A listen without a host
// gets 127.0.0.1 here, so the Playground (which speaks for a signed-in user) is reachable from
// this machine only.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  } else if (first && typeof first === "object" && first.path === undefined && !first.host) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
