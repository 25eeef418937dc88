export { startWorkerProcess, workerConfigSchema, type WorkerConfig } from './main.ts';
