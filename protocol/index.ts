// protocol/: wire formats shared by the gate, the simulator and the central.
// Pure TypeScript with no Node built-ins: runs on XS and on Node.
export * from './result.js';
export * from './schema.js';
export * from './messages.js';
export * from './envelope.js';
export * from './mac-envelope.js';
export { hmacSha256With } from './hmac.js';
export * from './topics.js';
export * from './crypto.js';
export * from './hex.js';
export { nobleCrypto, signEd25519, publicKeyOf } from './crypto-noble.js';
export * from './provisioning.js';
export * from './reasons.js';
