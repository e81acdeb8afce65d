// One import for the pure core, so outer layers depend on core's public surface and nothing deeper.
export * from './errors.js';
export * from './errno.js';
export * from './limits.js';
export * from './keys.js';
export * from './manifest.js';
export * from './signature.js';
export * from './bundle.js';
export * from './trust.js';
