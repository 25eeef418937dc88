export { schedulerConfigSchema, startSchedulerProcess, type SchedulerConfig } from './main.ts';
