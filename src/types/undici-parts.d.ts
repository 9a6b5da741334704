// undici's own modules, imported one by one by src/registry/undici.ts (their types are undici's exports, given there).
declare module 'undici/lib/dispatcher/agent.js' {
  const value: unknown;
  export default value;
}
declare module 'undici/lib/dispatcher/client.js' {
  const value: unknown;
  export default value;
}
declare module 'undici/lib/dispatcher/dispatcher.js' {
  const value: unknown;
  export default value;
}
declare module 'undici/lib/dispatcher/env-http-proxy-agent.js' {
  const value: unknown;
  export default value;
}
declare module 'undici/lib/api/index.js' {
  const value: unknown;
  export default value;
}
