// Type-checked lint for the whole project; src/core gets extra purity rules (no I/O, no clock).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'examples/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly', performance: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' },
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', 'fs', 'path', 'os', 'child_process', 'crypto', 'net', '../adapters/*', '../daemon/*', '../cli/*', '../vault/*'], message: 'src/core is pure: no I/O, no Node modules, no outer layers.' }] }],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'setImmediate', 'performance'],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'src/core takes the time as a parameter' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'src/core takes the time as a parameter' },
        { selector: "MemberExpression[object.name='Math'][property.name='random']", message: 'src/core takes randomness as a parameter' },
      ],
    },
  },
  {
    // The protection policy is pure like src/core: values in, values out (types may come from anywhere).
    files: ['src/daemon/protection/policy.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['node:*', '../../adapters/*', '../../vault/*', 'execa', 'zod'], allowTypeImports: true, message: 'the protection policy is pure: no I/O, no clock.' }] }],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'setImmediate', 'performance'],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'the protection policy takes the time as a parameter' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'the protection policy takes the time as a parameter' },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
