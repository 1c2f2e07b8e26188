import type { WriteRequest } from '../../src/store/port.js';

export const patientWrite = (id: string, family = 'Chan'): WriteRequest => ({
  resourceType: 'Patient',
  id,
  renderBody: (versionId, lastUpdated) => JSON.stringify({ resourceType: 'Patient', id, meta: { versionId: String(versionId), lastUpdated: new Date(lastUpdated).toISOString() }, name: [{ family }] }),
  index: { entries: [{ param: 'family', values: [{ value: family.toLowerCase() }] }], sortKeys: {}, patients: [id] },
});
