import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../src/access/classification.js';
import { sampleRecords } from '../access/samples.js';
import { hcpWithAccounts, joinedPatient, patientOf, type Hcp, type JoinedPatient } from '../access/territory.js';
import { registrationOffice, type Headers } from '../participation/fixtures.js';
import { describeEachStore } from '../store/stores.js';
import { FHIR_JSON, outcomeOf, useServer, type TestServer } from './harness.js';

/** $validate at type and instance level: the checks of a write, nothing stored, findings in a 200 OperationOutcome. */

type Json = Record<string, any>;
const examplesDir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
const example = (file: string): Json => JSON.parse(readFileSync(join(examplesDir, file), 'utf8')) as Json;

const VALID_EXAMPLES = ['Patient-example.json', 'Observation-bgpanel.json', 'Condition-example.json', 'MedicationRequest-medrx0301.json', 'Bundle-bundle-example.json'];

function validate(server: TestServer, url: string, payload: unknown, headers: Headers = {}): Promise<LightMyRequestResponse> {
  return server.request({ method: 'POST', url, headers: { ...FHIR_JSON, ...headers }, payload: payload as Record<string, unknown> });
}

const parameters = (resource: Json | undefined, extra: Json[] = []) => ({
  resourceType: 'Parameters',
  parameter: [...(resource ? [{ name: 'resource', resource }] : []), ...extra],
});

/** The issues of a 200 answer, by severity. */
function findings(res: LightMyRequestResponse): { severities: string[]; codes: string[]; expressions: string[]; text: string } {
  expect(res.statusCode, res.body).toBe(200);
  const outcome = res.json();
  expect(outcome.resourceType).toBe('OperationOutcome');
  return { severities: outcome.issue.map((i: Json) => i.severity), ...outcomeOf(res) };
}

const isValid = (res: LightMyRequestResponse) => {
  const f = findings(res);
  expect(f.severities, res.body).toEqual(['information']);
  expect(f.codes).toEqual(['informational']);
};

describeEachStore('$validate', (open) => {
  const server = useServer(open);

  it('finds nothing wrong with valid official examples, and stores nothing', async () => {
    for (const file of VALID_EXAMPLES) {
      const resource = example(file);
      isValid(await validate(server, `/fhir/${resource.resourceType as string}/$validate`, resource));
      const read = await server.request({ method: 'GET', url: `/fhir/${resource.resourceType as string}/${resource.id as string}` });
      expect(read.statusCode, file).toBe(404);
    }
    const types = VALID_EXAMPLES.map((f) => f.split('-')[0]).join(',');
    expect((await server.request({ method: 'GET', url: `/fhir?_type=${types}&_summary=count` })).json().total).toBe(0);
  });

  it('names the elements at fault in an invalid official example and in a broken one', async () => {
    const gingival = findings(await validate(server, '/fhir/DiagnosticReport/$validate', example('DiagnosticReport-gingival-mass.json')));
    expect(gingival.severities).toContain('error');
    expect(gingival.expressions).toContain('DiagnosticReport.resultsInterpreter[0].display');

    const broken = { ...example('Patient-example.json'), birthDate: '17 May 1980', colour: 'blue', name: [] };
    const f = findings(await validate(server, '/fhir/Patient/$validate', broken));
    expect(f.severities.every((s) => s === 'error')).toBe(true);
    expect(f.expressions).toEqual(expect.arrayContaining(['Patient.birthDate', 'Patient.colour', 'Patient.name']));
    expect(f.codes).not.toContain('informational');
  });

  it('names every empty array, empty object and null by its path; nulls that align primitive extensions are allowed', async () => {
    const patient = {
      resourceType: 'Patient',
      name: [{ family: 'Chan', given: ['Tai', 'Man'], _given: [null, { extension: [{ url: 'http://example.org/x', valueString: 'y' }] }] }, { given: [] }],
      contact: [{ telecom: [{}] }],
      address: [{ line: ['1 Main St'], city: null }],
      identifier: [{ system: 'http://example.org/id', value: '1', _value: {} }],
    };
    const f = findings(await validate(server, '/fhir/Patient/$validate', patient));
    // The schema also finds the null city (not a string): each path once here.
    const structural = new Set(f.expressions.filter((e) => ['Patient.name[1].given', 'Patient.contact[0].telecom[0]', 'Patient.address[0].city', 'Patient.identifier[0]._value'].includes(e)));
    expect([...structural].sort()).toEqual(['Patient.address[0].city', 'Patient.contact[0].telecom[0]', 'Patient.identifier[0]._value', 'Patient.name[1].given']);
    expect(f.text).toMatch(/Arrays must not be empty/);
    expect(f.text).toMatch(/Objects must not be empty/);
    expect(f.text).toMatch(/Values must not be null/);
    expect(f.expressions.some((e) => e.startsWith('Patient.name[0]'))).toBe(false);
  });

  it('takes a Parameters body with resource, mode and profile', async () => {
    const patient = example('Patient-example.json');
    isValid(await validate(server, '/fhir/Patient/$validate', parameters(patient, [{ name: 'mode', valueCode: 'create' }])));
    isValid(await validate(server, '/fhir/Patient/$validate', parameters(patient, [{ name: 'profile', valueUri: 'http://hl7.org/fhir/StructureDefinition/Patient' }])));
    const profiled = findings(await validate(server, '/fhir/Patient/$validate', parameters(patient, [{ name: 'profile', valueCanonical: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient' }])));
    expect(profiled.severities).toEqual(['information', 'warning']);
    expect(profiled.text).toMatch(/Only the base definition .*us-core-patient' was not/);
    // A Parameters resource is itself validated when its parameters are not this operation's.
    isValid(await validate(server, '/fhir/Parameters/$validate', { resourceType: 'Parameters', parameter: [{ name: 'x', valueString: 'y' }] }));
    // mode and profile may come from the URL when the body is the resource.
    expect(findings(await validate(server, '/fhir/Patient/$validate?profile=http://example.org/p', patient)).severities).toEqual(['information', 'warning']);
  });

  it('checks an update against the instance: the id must match; unknown ids may be created', async () => {
    const stored = await server.create({ resourceType: 'Patient', gender: 'female' });
    const id = stored.id as string;
    isValid(await validate(server, `/fhir/Patient/${id}/$validate`, { resourceType: 'Patient', id, gender: 'male' }));
    isValid(await validate(server, '/fhir/Patient/brand-new/$validate', parameters({ resourceType: 'Patient', id: 'brand-new' }, [{ name: 'mode', valueCode: 'update' }])));
    const mismatch = findings(await validate(server, `/fhir/Patient/${id}/$validate`, { resourceType: 'Patient', id: 'other', gender: 'male' }));
    expect(mismatch.severities).toEqual(['error']);
    expect(mismatch.expressions).toEqual(['Patient.id']);
    const noId = findings(await validate(server, '/fhir/Patient/$validate?mode=update', { resourceType: 'Patient' }));
    expect(noId.expressions).toEqual(['Patient.id']);
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${id}` })).json().gender).toBe('female');
  });

  it('mode=delete judges the stored instance: 404 when there is none', async () => {
    const stored = await server.create({ resourceType: 'Patient', gender: 'female' });
    isValid(await validate(server, `/fhir/Patient/${stored.id as string}/$validate`, parameters(undefined, [{ name: 'mode', valueCode: 'delete' }])));
    expect((await server.request({ method: 'GET', url: `/fhir/Patient/${stored.id as string}` })).statusCode).toBe(200);
    const missing = await validate(server, '/fhir/Patient/nobody/$validate', parameters(undefined, [{ name: 'mode', valueCode: 'delete' }]));
    expect(missing.statusCode).toBe(404);
    expect(outcomeOf(missing).codes).toEqual(['not-found']);
    expect((await validate(server, '/fhir/Patient/$validate', parameters(undefined, [{ name: 'mode', valueCode: 'delete' }]))).statusCode).toBe(400);
  });

  it('answers bad requests with an OperationOutcome and the right status', async () => {
    const notJson = await server.request({ method: 'POST', url: '/fhir/Patient/$validate', headers: FHIR_JSON, payload: '{"resourceType": "Patient", ' });
    expect(notJson.statusCode).toBe(400);
    expect(outcomeOf(notJson).text).toBe('The request body is not valid JSON');
    const text = await server.request({ method: 'POST', url: '/fhir/Patient/$validate', headers: { 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    expect(outcomeOf(text).codes).toEqual(['not-supported']);

    const wrongType = await validate(server, '/fhir/Observation/$validate', example('Patient-example.json'));
    expect(wrongType.statusCode).toBe(400);
    expect(outcomeOf(wrongType).expressions).toEqual(['Observation.resourceType']);
    const wrongInParameters = await validate(server, '/fhir/Observation/$validate', parameters(example('Patient-example.json')));
    expect(wrongInParameters.statusCode).toBe(400);

    expect((await validate(server, '/fhir/Nonsense/$validate', { resourceType: 'Nonsense' })).statusCode).toBe(404);
    expect((await validate(server, '/fhir/Patient/$validate', [{ resourceType: 'Patient' }])).statusCode).toBe(400);
    expect((await validate(server, '/fhir/Patient/$validate', parameters(undefined))).statusCode).toBe(400);
    const badMode = await validate(server, '/fhir/Patient/$validate', parameters({ resourceType: 'Patient' }, [{ name: 'mode', valueCode: 'upsert' }]));
    expect(badMode.statusCode).toBe(400);
    expect(outcomeOf(badMode).expressions).toEqual(['mode']);
    const get = await server.request({ method: 'GET', url: '/fhir/Patient/$validate' });
    expect(get.statusCode).toBe(405);
    expect(outcomeOf(get).codes).toEqual(['not-supported']);
  });

  it("applies the server's own write rules: the audit trail is the server's, and no client scope reaches it", async () => {
    const res = await validate(server, '/fhir/AuditEvent/$validate', example('AuditEvent-example.json'));
    expect(res.statusCode).toBe(403);
    expect(outcomeOf(res).codes).toEqual(['forbidden']);
    expect(outcomeOf(res).text).toMatch(/written by the server only/);
  });

  it('is listed on every type in the CapabilityStatement with its standard definition, as $everything is on Patient; their ids stay free for stored definitions', async () => {
    const rest = (await server.request({ method: 'GET', url: '/fhir/metadata', headers: { authorization: '' } })).json().rest[0];
    const operationsOf = (type: string) => (rest.resource.find((r: Json) => r.type === type).operation ?? []) as Json[];
    for (const type of ['Observation', 'Patient', 'Parameters']) {
      const validate = operationsOf(type).find((o) => o.name === 'validate');
      expect(validate?.definition).toBe('http://hl7.org/fhir/OperationDefinition/Resource-validate');
      expect(validate?.documentation).toMatch(/Only the base StructureDefinition/);
    }
    expect(operationsOf('Patient').find((o) => o.name === 'everything')?.definition).toBe('http://hl7.org/fhir/OperationDefinition/Patient-everything');
    // The official examples carry these ids; they are stored and read like any other resource.
    for (const file of ['OperationDefinition-Resource-validate.json', 'OperationDefinition-Patient-everything.json']) {
      const definition = example(file);
      const put = await server.request({ method: 'PUT', url: `/fhir/OperationDefinition/${String(definition.id)}`, headers: FHIR_JSON, payload: definition });
      expect(put.statusCode, put.body).toBeLessThan(300);
      const read = await server.request({ method: 'GET', url: `/fhir/OperationDefinition/${String(definition.id)}` });
      expect(read.json().url).toBe(definition.url);
    }
  });

  describe('under the principal asking', () => {
    let hcp: Hcp;
    let patient: JoinedPatient;
    let stranger: JoinedPatient;
    let doctor: Headers;

    beforeAll(async () => {
      hcp = await hcpWithAccounts(server);
      patient = await patientOf(server, hcp.id);
      stranger = await joinedPatient(server);
      doctor = hcp.accounts['medical-practitioner']!.headers;
    });

    it("gives an HCProf the upload rules' findings: a reachable patient, the sharable scope", async () => {
      const record = sampleRecords(patient.id)['lab-radiology'];
      isValid(await validate(server, '/fhir/Observation/$validate', record, doctor));
      const unreachable = findings(await validate(server, '/fhir/Observation/$validate', sampleRecords(stranger.id)['lab-radiology'], doctor));
      expect(unreachable.codes).toEqual(['forbidden']);
      expect(unreachable.text).toMatch(/not a joined patient under this HCP's care/);
      const account = { resourceType: 'Account', status: 'active', subject: [{ reference: `Patient/${patient.id}` }] };
      expect(classify(account).type).toBeUndefined();
      const outOfScope = findings(await validate(server, '/fhir/Account/$validate', account, doctor));
      expect(outOfScope.codes).toEqual(['business-rule']);
      expect(outOfScope.text).toMatch(/Outside the sharable scope/);
    });

    it('answers 404 for mode=update or delete on a record the account cannot see, and judges amendments by contributor', async () => {
      const hidden = await server.create(sampleRecords(stranger.id)['lab-radiology']);
      const hiddenUrl = `/fhir/Observation/${hidden.id as string}/$validate`;
      expect((await validate(server, hiddenUrl, { ...hidden, status: 'amended' }, doctor)).statusCode).toBe(404);
      expect((await validate(server, hiddenUrl, parameters(undefined, [{ name: 'mode', valueCode: 'delete' }]), doctor)).statusCode).toBe(404);

      // Visible, but contributed by a backend client, not this HCP: it may not amend or delete it.
      const visible = await server.create(sampleRecords(patient.id)['lab-radiology']);
      const url = `/fhir/Observation/${visible.id as string}/$validate`;
      const amend = findings(await validate(server, url, { ...visible, status: 'amended' }, doctor));
      expect(amend.codes).toEqual(['forbidden']);
      expect(amend.text).toMatch(/only its contributor may amend or delete it/);
      expect(findings(await validate(server, url, parameters(undefined, [{ name: 'mode', valueCode: 'delete' }]), doctor)).codes).toEqual(['forbidden']);

      // Its own upload it may amend.
      const own = await server.request({ method: 'POST', url: '/fhir/Observation', headers: { ...FHIR_JSON, ...doctor }, payload: sampleRecords(patient.id)['lab-radiology'] });
      expect(own.statusCode, own.body).toBe(201);
      isValid(await validate(server, `/fhir/Observation/${own.json().id as string}/$validate`, { ...(own.json() as Json), status: 'amended' }, doctor));
    });

    it('needs the right to make the write it validates (403)', async () => {
      const observation = sampleRecords(patient.id)['lab-radiology'];
      for (const headers of [await registrationOffice(), patient.headers]) {
        const res = await validate(server, '/fhir/Observation/$validate', observation, headers);
        expect(res.statusCode, res.body).toBe(403);
        expect(outcomeOf(res).codes).toEqual(['forbidden']);
      }
    });
  });
});
