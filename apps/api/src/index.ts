export { createApp, startApiServer, type ApiDeps } from './server.ts';
export {
  API_SCOPES,
  apiConfigFromEnv,
  apiConfigSchema,
  apiConfigShape,
  apiOwnConfigShape,
  loadApiConfig,
  type ApiAuthConfig,
  type ApiConfig,
  type ApiEnvConfig,
  type ApiScope,
} from './config.ts';
export { createAuthorizer, type Principal } from './auth.ts';
export { firstUnsafeInteger } from './exact-json.ts';
export { serveApi, startApiProcess, type ApiProcessConfig, type RunningApiProcess, type ServedApi } from './process.ts';
