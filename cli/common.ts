import { Client, Connection } from '@temporalio/client';
import { ConfigError, loadConfig, type AppConfig } from '../config/config';

/** Load config or stop with the one-line reason (exit code 2 = configuration error). */
export function configOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`approval-plus: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
}

export async function connectClient(config: AppConfig): Promise<{ client: Client; close(): Promise<void> }> {
  const address = config.temporal.address ?? '127.0.0.1:7233';
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address,
      tls: config.temporal.tls || config.temporal.apiKey ? {} : undefined,
      apiKey: config.temporal.apiKey,
      connectTimeout: 5000,
    });
  } catch (err) {
    throw new Error(`cannot reach Temporal at ${address} (is \`npm start\` running?): ${(err as Error).message}`);
  }
  return { client: new Client({ connection, namespace: config.temporal.namespace }), close: () => connection.close() };
}

export function uiLink(config: AppConfig, workflowId: string): string {
  const base = config.temporal.address ? '<your Temporal UI>' : `http://127.0.0.1:${config.temporal.uiPort}`;
  return `${base}/namespaces/${config.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}`;
}
