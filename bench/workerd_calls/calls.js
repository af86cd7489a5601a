// The same storm as TestCall's (tests/classes/test_call.c), on workerd: a Caller object
// keeps `window` calls in flight to one Callee object until n are answered, then answers
// with the elapsed time. mode=fetch: stub.fetch (what duro_call is); mode=rpc: a method.
import { DurableObject } from "cloudflare:workers";

export class Callee extends DurableObject {
  async fetch(request) { return new Response("ok"); }
  nop() { return "ok"; }
}

export class Caller extends DurableObject {
  async fetch(request) {
    const u = new URL(request.url);
    const n = Number(u.searchParams.get("n") || 1000);
    const window = Number(u.searchParams.get("window") || 64);
    const rpc = u.searchParams.get("mode") === "rpc";
    const callee = this.env.CALLEE.get(this.env.CALLEE.idFromName("callee"));
    let sent = 0, done = 0, failed = 0;
    const t0 = performance.now();
    const lane = async () => {
      while (sent < n) {
        sent++;
        try {
          if (rpc) await callee.nop();
          else await (await callee.fetch("http://callee/nop")).text();
        } catch (e) { failed++; }
        done++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
    const ms = performance.now() - t0;
    return Response.json({ n, done, failed, elapsed_ms: ms });
  }
}

export default {
  async fetch(request, env) {
    return env.CALLER.get(env.CALLER.idFromName("caller")).fetch(request);
  },
};
