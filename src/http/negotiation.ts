/** Which JSON media type to answer with, from _format or Accept; null when we cannot satisfy it. */

export type FhirMediaType = 'application/fhir+json' | 'application/json';

const FORMAT_ALIASES: Record<string, FhirMediaType> = {
  json: 'application/fhir+json',
  'application/fhir+json': 'application/fhir+json',
  'application/json+fhir': 'application/fhir+json',
  'application/json': 'application/json',
};

const ACCEPTED_RANGES: Record<string, FhirMediaType> = {
  ...FORMAT_ALIASES,
  'application/*': 'application/fhir+json',
  '*/*': 'application/fhir+json',
};

/** Bulk Data clients ask for their NDJSON files so; the route serving them answers NDJSON, and its errors in JSON. */
const NDJSON_RANGES: Record<string, FhirMediaType> = {
  'application/fhir+ndjson': 'application/fhir+json',
  'application/ndjson': 'application/fhir+json',
};

function mediaRanges(accept: string): { range: string; q: number }[] {
  return accept
    .split(',')
    .map((part) => {
      const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      return { range, q: q ? Number(q.slice(2)) : 1 };
    })
    .filter((r) => r.range && !(r.q <= 0))
    .sort((a, b) => b.q - a.q);
}

/** `ndjson`: the route answers NDJSON (Bulk Data files), so clients may ask for it. */
export function negotiate(format: string | undefined, accept: string | undefined, options: { ndjson?: boolean } = {}): FhirMediaType | null {
  if (format !== undefined) return FORMAT_ALIASES[format.trim().toLowerCase()] ?? null;
  if (accept === undefined || accept.trim() === '') return 'application/fhir+json';
  for (const { range } of mediaRanges(accept)) {
    const type = ACCEPTED_RANGES[range] ?? (options.ndjson ? NDJSON_RANGES[range] : undefined);
    if (type) return type;
  }
  return null;
}
