import { readFileSync } from 'node:fs';
import type { SoftwareInfo } from './fhir/capability.js';

/** Name and version from package.json; the release date is set when a version is cut. */
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };

export const RELEASE_DATE = '2026-11-23';

export const software: SoftwareInfo = { name: pkg.name, version: pkg.version, releaseDate: RELEASE_DATE };
