// The SqlCounter of duro (classes/sqlcounter.c) as a SQLite-backed Durable Object for
// workerd: POST /sqlcounter/<name> increments with the same upsert and answers the count,
// GET answers it. workerd commits each event's writes to the object's SQLite file (WAL,
// synced) before the output gate lets the response go.
export class SqlCounter {
  constructor(ctx, env) {
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
  }
  async fetch(req) {
    let rows;
    if (req.method === "POST")
      rows = this.sql.exec("INSERT INTO counter (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1 RETURNING n").toArray();
    else
      rows = this.sql.exec("SELECT n FROM counter WHERE id = 1").toArray();
    return new Response(String(rows.length ? rows[0].n : 0));
  }
}

export default {
  async fetch(req, env) {
    const name = new URL(req.url).pathname.split("/")[2] || "hot";
    return env.SQLCOUNTER.get(env.SQLCOUNTER.idFromName(name)).fetch(req);
  },
};
