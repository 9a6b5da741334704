// ESM TypeScript under jest: ts-jest compiles each file (isolated, no type check: `npm run typecheck` does that)
// and jest runs them as ES modules (node --experimental-vm-modules, see scripts/test.mjs).
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 30000,
};
