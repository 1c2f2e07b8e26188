import { describe, expect, it } from 'vitest';
import { linksIn, replaceNarrativeLinks } from '../../../src/fhir/bundle-processing/references.js';

/** Which strings of a resource a transaction resolves, found by each element's R4 type. */

const A = 'urn:uuid:0b5e3d1c-3333-4333-8333-000000000001';
const found = (resource: Record<string, unknown>) => linksIn(resource).map(({ kind, value }) => `${kind} ${value}`);

describe('links of a resource', () => {
  it('references, uri and url elements, and narratives: not canonical, oid, uuid or string ones', () => {
    expect(found({
      resourceType: 'DocumentReference',
      text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${A}">x</a></div>` },
      masterIdentifier: { system: A, value: A },
      subject: { reference: 'Patient?identifier=X', display: A },
      author: [{ reference: 'Practitioner/1' }, { reference: A }],
      extension: [{ url: A, valueCanonical: A }, { url: 'http://e.example', valueUuid: A, extension: [{ url: 'http://f.example', valueUrl: A }] }],
      content: [{ attachment: { url: A } }],
      _status: { extension: [{ url: 'http://g.example', valueUri: A }] },
      unknownElement: { reference: A },
    })).toEqual([
      `narrative <div xmlns="http://www.w3.org/1999/xhtml"><a href="${A}">x</a></div>`,
      `uri ${A}`,
      'reference Patient?identifier=X',
      `reference ${A}`,
      `uri ${A}`,
      `uri ${A}`,
      `uri ${A}`,
    ]);
  });

  it('inside contained and nested resources, recursive backbone elements and profiled types', () => {
    expect(found({ resourceType: 'Observation', contained: [{ resourceType: 'Patient', id: 'p', photo: [{ url: A }] }], valueQuantity: { system: A } })).toEqual([`uri ${A}`, `uri ${A}`]);
    expect(found({ resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: A, resource: { resourceType: 'Patient', link: [{ other: { reference: A } }] } }] })).toEqual([`uri ${A}`, `reference ${A}`]);
    expect(found({ resourceType: 'Questionnaire', item: [{ item: [{ item: [{ definition: A, answerValueSet: A }] }] }] })).toEqual([`uri ${A}`]);
    expect(found({ resourceType: 'Parameters', parameter: [{ part: [{ part: [{ valueUri: A }] }] }] })).toEqual([`uri ${A}`]);
    expect(found({ resourceType: 'MedicationRequest', dosageInstruction: [{ doseAndRate: [{ doseQuantity: { system: A } }] }] })).toEqual([`uri ${A}`]);
  });

  it('nothing for a resource of no R4 type, or a contained one without resourceType', () => {
    expect(found({ resourceType: 'Nonsense', subject: { reference: A } })).toEqual([]);
    expect(found({ resourceType: 'Quantity', system: A })).toEqual([]);
    expect(found({ resourceType: 'Observation', contained: [{ subject: { reference: A } }] })).toEqual([]);
  });

  it('replacing a link writes where it was found', () => {
    const resource = { resourceType: 'Observation', derivedFrom: [{ reference: A }], focus: [{ reference: 'Patient/1' }] };
    const [link] = linksIn(resource);
    (link!.holder as Record<string, unknown>)[link!.key] = 'Media/9';
    expect(resource.derivedFrom[0]!.reference).toBe('Media/9');
  });
});

describe('links of a narrative', () => {
  const to = (link: string) => (link === A ? 'Binary/7' : undefined);

  it('a href and img src, whichever quotes and case; nothing else', () => {
    expect(replaceNarrativeLinks(`<A class="x" HREF = "${A}">${A}</A><img alt='${A}' src='${A}'/><img href="${A}"/><a src="${A}"/><abbr href="${A}"/><span title="${A}"/>`, to)).toBe(
      `<A class="x" HREF = "Binary/7">${A}</A><img alt='${A}' src='Binary/7'/><img href="${A}"/><a src="${A}"/><abbr href="${A}"/><span title="${A}"/>`,
    );
  });

  it('links to no entry stay', () => {
    expect(replaceNarrativeLinks('<a href="urn:uuid:other">x</a><a href="Patient/1">y</a>', to)).toBe('<a href="urn:uuid:other">x</a><a href="Patient/1">y</a>');
  });
});
