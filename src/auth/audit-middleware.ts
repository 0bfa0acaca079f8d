import type { AuditEvent } from '@medplum/fhirtypes';
import type { NextFunction, Request, Response } from 'express';
import type { Interaction, InteractionKind } from '../rest/interaction.js';
import { CLIENT_ID_SYSTEM, type AuditTrail } from './audit-trail.js';
import { clientAddress } from './client-address.js';

/**
 * Records one AuditEvent per FHIR request when its response is done, described from the request's
 * one classification (`req.interaction`, src/http/classify-request.ts), the same value the routes
 * and the scope check used. Nothing of the body or the query is recorded: only the kind of
 * interaction, the resource it named, the patient, who asked, and the outcome.
 */
const SUBTYPE: Record<InteractionKind, string> = {
  capabilities: 'capabilities',
  read: 'read',
  vread: 'vread',
  update: 'update',
  'conditional-update': 'update',
  delete: 'delete',
  'conditional-delete': 'delete',
  create: 'create',
  'search-type': 'search-type',
  'history-system': 'history-system',
  'history-type': 'history-type',
  'history-instance': 'history-instance',
  batch: 'batch',
  operation: 'operation',
};

const ACTION: Partial<Record<InteractionKind, AuditEvent['action']>> = {
  create: 'C',
  update: 'U',
  'conditional-update': 'U',
  delete: 'D',
  'conditional-delete': 'D',
  batch: 'E',
  operation: 'E',
};

/** The names of the operations the server has (src/operations/registry.ts). */
interface KnownOperations {
  readonly entries: readonly { name: string }[];
}

export function auditRequests(trail: AuditTrail, options: { operations?: KnownOperations } = {}) {
  return (req: Request, res: Response, next: NextFunction): void => {
    // Read now: once the response is done the socket may be gone (an aborted or refused upload).
    const address = clientAddress(req);
    res.on('finish', () => {
      // A listener that throws ends the process (an 'uncaughtException'): never let one out.
      try {
        // A failed authentication is coalesced by the trail (one event per address and window).
        trail.record(auditEvent(req, res.statusCode, address, options.operations));
      } catch (err) {
        trail.lost(err);
      }
    });
    next();
  };
}

function auditEvent(
  req: Request,
  status: number,
  address: string,
  operations: KnownOperations | undefined,
): AuditEvent {
  const interaction = req.interaction;
  const outcome = status < 400 ? '0' : status < 500 ? '4' : '8';
  const target = interaction?.type && interaction.id ? `${interaction.type}/${interaction.id}` : undefined;
  return {
    resourceType: 'AuditEvent',
    type: {
      system: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
      code: 'rest',
      display: 'RESTful Operation',
    },
    ...(interaction
      ? {
          subtype: [
            {
              system: 'http://hl7.org/fhir/restful-interaction',
              code: subtypeOf(interaction, req.fhirBody?.json),
            },
          ],
        }
      : {}),
    action: interaction ? (ACTION[interaction.kind] ?? 'R') : 'E',
    recorded: new Date().toISOString(),
    outcome,
    outcomeDesc: `HTTP ${status}`,
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
        network: { address, type: '2' },
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
        what: target ? { reference: target } : { display: entityName(interaction, operations) },
        type: {
          system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
          code: '2',
          display: 'System Object',
        },
        ...(interaction?.kind === 'operation'
          ? { detail: [{ type: 'operation', valueString: operationName(interaction, operations) }] }
          : {}),
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
}

/** `transaction` or `batch` for `POST [base]` (https://hl7.org/fhir/R4/valueset-type-restful-interaction.html). */
function subtypeOf(interaction: Interaction, body: unknown): string {
  if (interaction.kind === 'batch' && (body as { type?: unknown } | undefined)?.type === 'transaction') {
    return 'transaction';
  }
  return SUBTYPE[interaction.kind];
}

function entityName(interaction: Interaction | undefined, operations: KnownOperations | undefined): string {
  if (!interaction) return 'unknown';
  if (interaction.type) return interaction.type;
  return interaction.kind === 'operation' ? operationName(interaction, operations) : 'system';
}

/** Only the names of operations the server has: a made-up name in the path is not recorded. */
function operationName(interaction: Interaction, operations: KnownOperations | undefined): string {
  const name = interaction.operation ?? '';
  return !operations || operations.entries.some((e) => e.name === name) ? `$${name}` : '$unknown';
}
