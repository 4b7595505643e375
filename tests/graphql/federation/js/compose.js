// Composes subgraph SDL files into a supergraph with @apollo/composition.
// Usage: node compose.js name=path/to/schema.graphql [name2=other.graphql ...]
// Prints one JSON line: {"ok": true, "supergraphSdl": "..."} or {"ok": false, "errors": [...]}.
'use strict';
const fs = require('fs');
const { parse } = require('graphql');
const { composeServices } = require('@apollo/composition');

const services = process.argv.slice(2).map((arg) => {
  const [name, file] = arg.split('=');
  return { name, url: `http://${name}.invalid/graphql`, typeDefs: parse(fs.readFileSync(file, 'utf8')) };
});
const result = composeServices(services);
if (result.errors && result.errors.length) {
  console.log(JSON.stringify({ ok: false, errors: result.errors.map((e) => e.message) }));
  process.exit(1);
}
console.log(JSON.stringify({
  ok: true,
  hints: (result.hints || []).map((h) => h.message),
  supergraphSdl: result.supergraphSdl,
}));
