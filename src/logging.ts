import { pino, type Logger } from 'pino';

/** Structured JSON logs on stdout. Callers log ids, routes and numbers, never payloads. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: 'pt-referral-fhir' } }, destination ?? process.stdout);
}
