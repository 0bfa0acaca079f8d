import { DEV_CLIENT_ID } from './auth/dev-client.js';
import { compose } from './compose.js';
import { ConfigError, loadConfig } from './config/config.js';

/** The service process: configuration, the composed service (src/compose.ts), graceful shutdown. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const service = await compose(config);
  const { logger } = service;
  if (service.devClient) {
    const { privateKeyFile } = service.devClient;
    logger.warn({ client: DEV_CLIENT_ID }, 'no CLIENTS_FILE: using the local development client');
    console.warn(
      `\nNo CLIENTS_FILE is set, so a local development client '${DEV_CLIENT_ID}' (admin) is registered.\n` +
        `Its private key is ${privateKeyFile}. Get a token with:\n` +
        `  npm run token -- --client ${DEV_CLIENT_ID} --key ${privateKeyFile} --url http://localhost:${config.port}\n` +
        `and send it as 'Authorization: Bearer <token>'. See README: Security.\n`,
    );
  }
  if (!service.security) {
    logger.warn(
      'AUTHENTICATION IS OFF (AUTH=off): every request is served without a token. Never expose this instance.',
    );
    console.warn(
      '\n*** WARNING: AUTH=off — the FHIR API is open to anyone who can reach it. Local development only. ***\n',
    );
  }
  const { port } = await service.start();
  logger.info(
    { port, host: config.host, store: service.store.dialect },
    `FHIR server listening on http://localhost:${port}/fhir`,
  );

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // In-flight requests finish (no drain limit); past 10 s the process exits anyway.
    void service.close({ drainMs: Infinity }).then(() => process.exit(0));
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
