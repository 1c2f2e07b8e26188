import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Generous: some suites load thousands of resources, and the MongoDB-wire test server
    // (FerretDB on SQLite) is far slower than a real MongoDB.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
