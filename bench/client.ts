/** Plain HTTP helpers for setting up benchmark data (not for measuring). */

export const FHIR_JSON = 'application/fhir+json';

export interface Created {
  id: string;
  versionId: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** One FHIR request with extra `headers` (e.g. authorization); throws an HttpError unless the status is one of `expect`. */
export async function fhirRequest(
  method: string,
  url: string,
  body?: unknown,
  expect: readonly number[] = [200, 201],
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: unknown }> {
  const res = await fetch(url, {
    method,
    headers: { accept: FHIR_JSON, ...(body !== undefined && { 'content-type': FHIR_JSON }), ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!expect.includes(res.status)) {
    throw new HttpError(res.status, `${method} ${url} answered ${res.status}: ${text.slice(0, 500)}`);
  }
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** The id and version of a create's answer, from its body or else its Location header. */
export function createdFrom(headers: Headers, json: unknown): Created {
  const body = json as { id?: unknown; meta?: { versionId?: unknown } } | undefined;
  if (typeof body?.id === 'string' && typeof body.meta?.versionId === 'string') {
    return { id: body.id, versionId: body.meta.versionId };
  }
  const m = /\/([^/]+)\/_history\/([^/]+)$/.exec(headers.get('location') ?? '');
  if (m?.[1] && m[2]) return { id: m[1], versionId: m[2] };
  throw new Error('a create answered without an id (neither in the body nor in Location)');
}

export interface CreateAllResult {
  created: Created[];
  seconds: number;
}

/**
 * Creates `count` resources of `type` (resource `i` from `make(i)`), `concurrency` at a time,
 * keeping the order of `created` the order of `i`. Fails on the first non-201.
 */
export async function createAll(
  baseUrl: string,
  type: string,
  count: number,
  make: (index: number) => unknown,
  options: { concurrency?: number; headers?: Record<string, string>; onProgress?: (done: number) => void } = {},
): Promise<CreateAllResult> {
  const concurrency = options.concurrency ?? 16;
  const created = new Array<Created>(count);
  let next = 0;
  let done = 0;
  let failed = false;
  const started = performance.now();
  async function worker(): Promise<void> {
    while (!failed && next < count) {
      const i = next++;
      try {
        const { headers, json } = await fhirRequest('POST', `${baseUrl}/${type}`, make(i), [201], options.headers);
        created[i] = createdFrom(headers, json);
      } catch (err) {
        failed = true;
        throw err;
      }
      done++;
      if (options.onProgress && done % 1000 === 0) options.onProgress(done);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
  return { created, seconds: (performance.now() - started) / 1000 };
}
