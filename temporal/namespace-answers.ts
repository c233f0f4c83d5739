import type { ConnectionLike } from '@temporalio/client';

/**
 * Whether Temporal accepts calls for `namespace` now: the frontend answers DescribeNamespace within `timeoutMs`.
 * undefined = yes, else why not (one line). The ingress's and the worker's readiness both ask this.
 */
export async function namespaceAnswers(
  connection: Pick<ConnectionLike, 'workflowService' | 'withDeadline'>,
  namespace: string,
  timeoutMs: number
): Promise<string | undefined> {
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection.workflowService.describeNamespace({ namespace })
    );
    return undefined;
  } catch (err) {
    return `Temporal unreachable: ${(err as Error).message.split('\n')[0]}`;
  }
}
