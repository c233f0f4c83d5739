// The worker's workflowsPath / bundle entry: every workflow type the task queue runs.
export { nacWhitelistWorkflow } from './nac-whitelist.workflow';
export { forwardEventWorkflow } from './forward-event.workflow';
export { reconcileWorkflow } from './reconcile.workflow';
