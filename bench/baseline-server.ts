import { randomUUID } from 'node:crypto';
import express from 'express';

/**
 * The baseline for bench/http-throughput.ts: bare Express 5 with express.json() and an in-memory
 * Map, answering the same request shapes with the same body sizes as the service. The gap between
 * the two is what FHIR validation, indexing, SQLite and search cost; HTTP and JSON are common.
 */
type Stored = Record<string, unknown> & { id: string };

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const limit = Number(process.env.BODY_LIMIT_BYTES ?? 5 * 1024 * 1024);
const byId = new Map<string, Stored>();
const bySubject = new Map<string, Stored[]>();

const app = express();
app.disable('x-powered-by');
app.use(express.json({ type: ['application/json', 'application/fhir+json'], limit }));

app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});

// Echo, plus what any server must do to answer a create: an id, meta, and a Location header.
app.post('/fhir/ServiceRequest', (req, res) => {
  const id = randomUUID();
  const body = req.body as Record<string, unknown>;
  const resource: Stored = { ...body, id, meta: { versionId: '1', lastUpdated: new Date().toISOString() } };
  const subject = (body.subject as { reference?: string } | undefined)?.reference;
  byId.set(id, resource);
  if (subject) {
    const list = bySubject.get(subject) ?? [];
    list.push(resource);
    bySubject.set(subject, list);
  }
  res.setHeader('Location', `/fhir/ServiceRequest/${id}/_history/1`);
  res.status(201).type(FHIR_JSON).send(JSON.stringify(resource));
});

app.get('/fhir/ServiceRequest/:id', (req, res) => {
  const resource = byId.get(req.params.id);
  if (!resource) {
    res.status(404).type(FHIR_JSON).send('{"resourceType":"OperationOutcome"}');
    return;
  }
  res.type(FHIR_JSON).send(JSON.stringify(resource));
});

// A searchset Bundle of the same shape and page size (20) the service returns.
app.get('/fhir/ServiceRequest', (req, res) => {
  const subject = String(req.query.subject ?? '');
  const status = req.query.status === undefined ? undefined : String(req.query.status);
  const matches = (bySubject.get(subject) ?? []).filter((r) => !status || r.status === status);
  res.type(FHIR_JSON).send(
    JSON.stringify({
      resourceType: 'Bundle',
      type: 'searchset',
      total: matches.length,
      link: [{ relation: 'self', url: req.originalUrl }],
      entry: matches.slice(0, 20).map((resource) => ({
        fullUrl: `/fhir/ServiceRequest/${resource.id}`,
        resource,
        search: { mode: 'match' },
      })),
    }),
  );
});

app.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1');
