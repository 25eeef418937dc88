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
import { clusterAddRoleCommand } from './cluster-role.ts';
import { deletedCommand, recoverCommand } from './recover.ts';
import { conflictsCommand, jobsCommand } from './history.ts';
import { demoCommand } from '../demo.ts';
import { clientDrillCommand } from './drill.ts';
import { initCommand } from './init.ts';
import { clientPurgeDeletedCommand, clientUpgradeSchemaCommand } from './maintenance.ts';
import { menuCommand } from './menu.ts';
import { clientRegisterCommand, clientSyncCommand, conflictsResolveCommand } from './register-sync.ts';
import { apiCommand, nodeCommand, schedulerCommand, workerCommand } from './processes.ts';
import { restoreCommand, verifyCommand } from './restore.ts';
import { clientRetentionCommand } from './retention.ts';

/** Every `syncctl` command, in the order help lists them. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  clientRegisterCommand,
  clientStartCommand,
  clientPauseCommand,
  clientSyncCommand,
  clientStatusCommand,
  clientIntervalCommand,
  clientRetentionCommand,
  clientConflictsConfigCommand,
  clientDeregisterCommand,
  clientUpgradeSchemaCommand,
  clientPurgeDeletedCommand,
  clientDrillCommand,
  clientsCommand,
  jobsCommand,
  conflictsCommand,
  conflictsResolveCommand,
  clusterStatusCommand,
  clusterDeregisterCommand,
  clusterAddRoleCommand,
  restoreCommand,
  verifyCommand,
  recoverCommand,
  deletedCommand,
  menuCommand,
  nodeCommand,
  workerCommand,
  schedulerCommand,
  apiCommand,
  demoCommand,
];
