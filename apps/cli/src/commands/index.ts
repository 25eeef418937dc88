import type { Command } from '../command.ts';
import {
  clientConflictsConfigCommand,
  clientDeregisterCommand,
  clientIntervalCommand,
  clientPauseCommand,
  clientStartCommand,
  clientStatusCommand,
  clientsCommand,
} from './client.ts';
import { clusterDeregisterCommand, clusterStatusCommand } from './cluster.ts';
import { conflictsCommand, jobsCommand } from './history.ts';
import { initCommand } from './init.ts';
import { nodeCommand, workerCommand } from './processes.ts';

/** Every `syncctl` command, in the order help lists them. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  clientStartCommand,
  clientPauseCommand,
  clientStatusCommand,
  clientIntervalCommand,
  clientConflictsConfigCommand,
  clientDeregisterCommand,
  clientsCommand,
  jobsCommand,
  conflictsCommand,
  clusterStatusCommand,
  clusterDeregisterCommand,
  nodeCommand,
  workerCommand,
];
