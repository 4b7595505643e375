// Runs @apollo/gateway (on @apollo/server) in front of one Renkei federation subgraph.
// Usage: node gateway.js <subgraph url>
// Prints "READY <gateway url>" once listening. The caller's Authorization header (a Renkei
// analyst bearer token) is passed through to the subgraph by willSendRequest; the gateway's
// own schema fetch (_service { sdl }) goes without credentials.
'use strict';
const { ApolloServer } = require('@apollo/server');
const { startStandaloneServer } = require('@apollo/server/standalone');
const { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } = require('@apollo/gateway');

const subgraphUrl = process.argv[2];

class PassThroughAuth extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context && context.authorization) {
      request.http.headers.set('authorization', context.authorization);
    }
  }
}

async function main() {
  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({ subgraphs: [{ name: 'renkei', url: subgraphUrl }] }),
    buildService: ({ url }) => new PassThroughAuth({ url }),
  });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, {
    listen: { host: '127.0.0.1', port: 0 },
    context: async ({ req }) => ({ authorization: req.headers.authorization || '' }),
  });
  console.log(`READY ${url}`);
}

main().catch((error) => {
  console.error(`FAILED ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
