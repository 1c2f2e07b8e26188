import { expect, it } from 'vitest';
import { readConfig } from '../src/config.js';

it('reads the limits of one search, each with its default', () => {
  expect(readConfig({}).searchCost).toEqual({ maxParameters: 100, maxComparisons: 500, maxListValues: 50_000 });
  const set = readConfig({ SEARCH_MAX_PARAMETERS: '20', SEARCH_MAX_COMPARISONS: '1000', SEARCH_MAX_LIST_VALUES: '200000' });
  expect(set.searchCost).toEqual({ maxParameters: 20, maxComparisons: 1000, maxListValues: 200_000 });
  expect(() => readConfig({ SEARCH_MAX_COMPARISONS: '0' })).toThrow('SEARCH_MAX_COMPARISONS must be a positive integer');
});

it('CORS_ALLOWED_ORIGINS takes origins (or *), and refuses a URL with a path at startup', () => {
  expect(readConfig({ CORS_ALLOWED_ORIGINS: 'https://portal.example.org, http://localhost:3000' }).corsAllowedOrigins).toEqual(['https://portal.example.org', 'http://localhost:3000']);
  expect(readConfig({}).corsAllowedOrigins).toEqual([]);
  expect(readConfig({ CORS_ALLOWED_ORIGINS: '*' }).corsAllowedOrigins).toEqual(['*']);
  expect(() => readConfig({ CORS_ALLOWED_ORIGINS: 'https://portal.example.org/app' })).toThrow(/CORS_ALLOWED_ORIGINS/);
});
