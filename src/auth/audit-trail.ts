import type { AuditEvent } from '@medplum/fhirtypes';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { storeResource } from '../rest/internal-write.js';
import type { ServerWriter } from '../rest/unit-of-work.js';

/**
 * One AuditEvent per request, shaped after IHE Basic Audit Log Patterns (who: client and role and
 * source address; what: interaction and resource; which patient; when; outcome). Events are
 * written in batches (one transaction per ~100 ms) so auditing does not double the cost of every
 * read; `flush()` writes what is pending (on shutdown, and in tests).
 */
export const CLIENT_ID_SYSTEM = 'https://ptreferral.dev/fhir/client-id';

export class AuditTrail {
  private pending: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    /** AuditEvents go through the write path like every other write (one unit per batch). */
    private readonly writer: ServerWriter,
    private readonly logger: Logger,
    private readonly delayMs = 100,
  ) {}

  record(event: AuditEvent): void {
    this.pending.push(event);
    this.timer ??= setTimeout(() => void this.flush(), this.delayMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending.splice(0);
    const previous = this.flushing;
    this.flushing = (async () => {
      await previous;
      if (batch.length === 0) return;
      try {
        await this.writer(async (uow) => {
          for (const event of batch) await storeResource(uow, event, { built: true });
        });
      } catch (err) {
        this.logger.error(
          { err: { type: (err as Error).name }, lost: batch.length },
          'could not write AuditEvents',
        );
      }
    })();
    await this.flushing;
  }
}

const SUBTYPE: Record<string, string> = {
  read: 'read',
  vread: 'vread',
  search: 'search-type',
  create: 'create',
  update: 'update',
  delete: 'delete',
  history: 'history-instance',
  batch: 'batch',
  operation: 'operation',
};

/** Classifies the request and records it when the response is done. */
export function auditRequests(trail: AuditTrail) {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.on('finish', () => {
      const parts = req.path.split('/').filter(Boolean);
      const [type, id, third] = parts;
      const interaction = classify(req.method, parts);
      const outcome = res.statusCode < 400 ? '0' : res.statusCode < 500 ? '4' : '8';
      const target =
        type && /^[A-Z]/.test(type) && id && !id.startsWith('$') && !id.startsWith('_')
          ? `${type}/${id}`
          : undefined;
      const event: AuditEvent = {
        resourceType: 'AuditEvent',
        type: {
          system: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
          code: 'rest',
          display: 'RESTful Operation',
        },
        subtype: [
          { system: 'http://hl7.org/fhir/restful-interaction', code: SUBTYPE[interaction] ?? 'operation' },
        ],
        action:
          (
            { create: 'C', update: 'U', delete: 'D', operation: 'E', batch: 'E' } as Record<
              string,
              AuditEvent['action']
            >
          )[interaction] ?? 'R',
        recorded: new Date().toISOString(),
        outcome,
        outcomeDesc: `HTTP ${res.statusCode}`,
        agent: [
          {
            type: {
              coding: [
                {
                  system: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type',
                  code: 'humanuser',
                },
              ],
              text: req.auth?.role ?? 'anonymous',
            },
            who: req.auth
              ? { identifier: { system: CLIENT_ID_SYSTEM, value: req.auth.clientId } }
              : { display: 'unauthenticated' },
            requestor: true,
            role: [{ text: req.auth?.role ?? 'anonymous' }],
            network: { address: req.socket.remoteAddress ?? 'unknown', type: '2' },
          },
        ],
        source: {
          observer: { display: 'pt-referral-fhir' },
          type: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/security-source-type',
              code: '4',
              display: 'Application Server',
            },
          ],
        },
        entity: [
          {
            what: target
              ? { reference: target }
              : { display: type && /^[A-Z$]/.test(type) ? type : 'system' },
            type: {
              system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
              code: '2',
              display: 'System Object',
            },
            ...(third ? { detail: [{ type: 'operation', valueString: third.slice(0, 64) }] } : {}),
          },
          ...(target?.startsWith('Patient/')
            ? [
                {
                  what: { reference: target },
                  type: {
                    system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
                    code: '1',
                    display: 'Person',
                  },
                  role: {
                    system: 'http://terminology.hl7.org/CodeSystem/object-role',
                    code: '1',
                    display: 'Patient',
                  },
                },
              ]
            : []),
        ],
      };
      trail.record(event);
    });
    next();
  };
}

function classify(method: string, parts: string[]): string {
  const last = parts[parts.length - 1] ?? '';
  if (parts.length === 0) return method === 'POST' ? 'batch' : 'read';
  if (last.startsWith('$') || parts.some((p) => p.startsWith('$'))) return 'operation';
  if (parts.includes('_history')) return parts.length === 4 ? 'vread' : 'history';
  if (parts.includes('_search')) return 'search';
  if (method === 'GET' || method === 'HEAD') return parts.length === 1 ? 'search' : 'read';
  if (method === 'POST') return 'create';
  if (method === 'PUT') return 'update';
  if (method === 'DELETE') return 'delete';
  return 'operation';
}
