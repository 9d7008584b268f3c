import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real servers and clients; two workers match the two cores CI has.
    pool: 'forks',
    maxWorkers: 2,
  },
});
