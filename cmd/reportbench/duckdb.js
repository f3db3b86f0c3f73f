// The DuckDB side of reportbench: the report's aggregation (events per day,
// domain and code) of an NDJSON events file, with @duckdb/node-api.
// Usage: node duckdb.js FILE. Prints {"groups":N,"events":N} on stdout.
const { DuckDBInstance } = require('@duckdb/node-api');

async function main() {
  const file = process.argv[2].replaceAll("'", "''");
  const instance = await DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  const reader = await con.runAndReadAll(`
    SELECT CAST(time AS DATE) AS day,
           lower(split_part(recipient, '@', 2)) AS domain,
           code,
           count(*) AS n
    FROM read_ndjson('${file}', columns = {time: 'TIMESTAMP', recipient: 'VARCHAR', code: 'INTEGER'})
    GROUP BY ALL`);
  let events = 0n;
  const rows = reader.getRows();
  for (const r of rows) events += BigInt(r[3]);
  console.log(JSON.stringify({ groups: rows.length, events: events.toString() }));
}

main().catch((err) => { console.error(err); process.exit(1); });
