import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestApp, type TestApp } from './test-app.js';

export interface ListeningApp extends TestApp {
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  origin: string;
  /** `<origin>/fhir`, the FHIR base URL. */
  fhirBase: string;
  server: Server;
}

/**
 * The real app on a real store, listening on an ephemeral port of 127.0.0.1, so tests can use
 * real HTTP clients and real concurrent connections. `close()` stops the server (dropping
 * keep-alive connections) and then the store.
 */
export async function listenTestApp(options: Parameters<typeof startTestApp>[0] = {}): Promise<ListeningApp> {
  const t = await startTestApp(options);
  const server = createServer(t.app);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    ...t,
    server,
    origin,
    fhirBase: `${origin}/fhir`,
    close: async () => {
      await new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      await t.close();
    },
  };
}
