import type { Client } from '@temporalio/client';
import type { QueryDefinition } from '@temporalio/common';

/**
 * A query to a grant's latest run (Continue-As-New moves it), answered within QUERY_TIMEOUT_MS or failed. A run no
 * worker picks up would otherwise hold the call until the RPC deadline (~30 s): one such run must not stall a
 * listing, a whois or a reconcile pass.
 */
export const QUERY_TIMEOUT_MS = 5000;

export function queryRun<R>(client: Client, workflowId: string, query: QueryDefinition<R, []>): Promise<R> {
  return client.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
    client.workflow.getHandle(workflowId).query(query)
  );
}
