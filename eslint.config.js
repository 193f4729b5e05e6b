// ESLint flat config: the recommended JavaScript and typescript-eslint rules, formatting left to Prettier.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', '.tap/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      // unused names are mistakes, except the ones spelled to be ignored
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // the logger is the only way out of src/
      'no-console': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // a closure may read a variable that is assigned once, later (a server handler and the server itself)
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // tests, benchmarks, the demo launcher and fixtures may print
    files: ['test/**', 'bench/**', 'demo/**', 'fixtures/**'],
    rules: { 'no-console': 'off' },
  },
);
