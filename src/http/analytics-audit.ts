import type { AuditEvent } from '@medplum/fhirtypes';
import type { NextFunction, Request, Response } from 'express';
import { CLIENT_ID_SYSTEM, type AuditTrail } from '../auth/audit-trail.js';
import { clientAddress } from '../auth/client-address.js';

/**
 * One AuditEvent per analytics request (the dashboard and the CSV exports, outside /fhir; the
 * FHIR endpoint's `$evaluate-measure` is audited with every FHIR request), recorded through the
 * AuditTrail when the response is done, refusals included. The figures span every referrer's
 * referrals, so who looked, when and at what is kept like any FHIR read (IHE Basic Audit Log
 * Patterns). Only the route is recorded — never the query (a `source` names a referrer) or the body.
 */
export function auditAnalytics(trail: AuditTrail) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const route = routeName(req.originalUrl.split('?')[0] ?? '');
    // The stylesheet and script are the same for everyone and tell nothing about the figures.
    if (route === 'dashboard-assets') return next();
    const address = clientAddress(req);
    res.on('finish', () => {
      // A listener that throws ends the process: never let one out.
      try {
        trail.record(analyticsAuditEvent(req, res.statusCode, address, route));
      } catch (err) {
        trail.lost(err);
      }
    });
    next();
  };
}

const DICOM = 'http://dicom.nema.org/resources/ontology/DCM';
const DICOM_QUERY = { system: DICOM, code: '110112', display: 'Query' };
const DICOM_EXPORT = { system: DICOM, code: '110106', display: 'Export' };

/** The route as a fixed name: the path's own text is recorded only where it is a Measure id. */
function routeName(path: string): string {
  if (path === '/dashboard' || path === '/dashboard/') return 'dashboard';
  if (path.startsWith('/dashboard/assets/')) return 'dashboard-assets';
  if (path === '/analytics/export.csv') return 'referral-export';
  const measure = /^\/analytics\/measures\/([a-z0-9-]{1,64})\.csv$/.exec(path)?.[1];
  return measure ? `measure-export:${measure}` : 'analytics-unknown';
}

function analyticsAuditEvent(req: Request, status: number, address: string, route: string): AuditEvent {
  const role = req.auth?.role ?? 'anonymous';
  return {
    resourceType: 'AuditEvent',
    // DICOM's event types (https://hl7.org/fhir/R4/valueset-audit-event-type.html): a CSV leaves
    // the service (Export), the dashboard shows figures (Query); `rest` stays the FHIR endpoint's.
    type: route === 'dashboard' ? DICOM_QUERY : DICOM_EXPORT,
    subtype: [{ system: 'https://ptreferral.dev/fhir/CodeSystem/analytics-route', code: route }],
    action: 'R',
    recorded: new Date().toISOString(),
    outcome: status < 400 ? '0' : status < 500 ? '4' : '8',
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
          text: role,
        },
        who: req.auth
          ? { identifier: { system: CLIENT_ID_SYSTEM, value: req.auth.clientId } }
          : { display: 'unauthenticated' },
        requestor: true,
        role: [{ text: role }],
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
        what: { display: route.startsWith('measure-export:') ? `Measure/${route.slice(15)}` : route },
        type: {
          system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
          code: '2',
          display: 'System Object',
        },
        detail: [{ type: 'route', valueString: route }],
      },
    ],
  };
}
