import type { Server } from 'node:http';
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
  const { server, origin, fhirBase } = await t.service.start();
  return { ...t, server, origin, fhirBase };
}
