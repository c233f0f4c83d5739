import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parser as promql } from '@prometheus-io/lezer-promql';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { freePort } from '../temporal/dev-server';
import { cancelSignal, NAC_TASK_QUEUE, workflowIdFor } from '../workflows/definitions';
import { ROOT, startTestStack, type TestStack } from './support/harness';

/**
 * deploy/grafana/approval-plus.json against what the processes really export. The dashboard is loaded as JSON, every
 * query is parsed with Prometheus's own PromQL grammar (@prometheus-io/lezer-promql, the parser of Prometheus's UI),
 * and each metric it selects — with the labels it filters and groups by — must be among the series scraped, in the
 * exposition format (parse-prometheus-text-format), from a running stack after one grant: the ingress's /metrics,
 * the worker's /metrics (WORKER_HTTP_PORT) and the Temporal SDK's exporter (TEMPORAL_METRICS_ADDRESS).
 */

interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string; refId?: string }[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating?: { list: { name: string; type: string }[] };
}

/** What one query asks for: each selector's metric, the labels it matches (name → value, '' = any), grouping. */
interface Selector {
  metric: string;
  matchers: Map<string, { op: string; value: string }>;
}
interface QueryUse {
  selectors: Selector[];
  grouping: string[];
}

/** Grafana's own interval variables, replaced as Grafana does before the query reaches Prometheus. */
const GRAFANA_VARIABLES = /\$__(rate_interval|interval|range)\b/g;

function parseQuery(expr: string): QueryUse {
  const text = expr.replace(GRAFANA_VARIABLES, '5m');
  const tree = promql.parse(text);
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  const errors: string[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError)
      errors.push(`at ${cursor.from}: ${JSON.stringify(text.slice(cursor.from, cursor.from + 20))}`);
    if (cursor.name === 'VectorSelector') {
      const node = cursor.node;
      const id = node.getChild('Identifier');
      const matchers = new Map<string, { op: string; value: string }>();
      for (const m of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
        const name = text.slice(m.getChild('LabelName')!.from, m.getChild('LabelName')!.to);
        const op = text.slice(m.getChild('MatchOp')!.from, m.getChild('MatchOp')!.to);
        const lit = m.getChild('StringLiteral')!;
        matchers.set(name, { op, value: JSON.parse(text.slice(lit.from, lit.to)) as string });
      }
      if (id) selectors.push({ metric: text.slice(id.from, id.to), matchers });
    }
    if (cursor.name === 'GroupingLabels')
      for (const l of cursor.node.getChildren('LabelName')) grouping.push(text.slice(l.from, l.to));
  } while (cursor.next());
  assert.deepEqual(errors, [], `PromQL parses: ${expr}`);
  return { selectors, grouping };
}

/** Every series name scraped (histograms as name_bucket/_sum/_count), with the label values seen on it, `le` too. */
type Series = Map<string, Map<string, Set<string>>>;

async function scrape(url: string, into: Series): Promise<void> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  const text = await res.text();
  assert.ok(parsePrometheusTextFormat(text).length > 0, `${url} exports metrics`);
  // Read without its # TYPE lines, every sample is an untyped series of its own name with all its labels: the
  // parser folds a typed histogram's series into one and drops their labels (flattenMetrics in its dist), and a
  // dashboard groups histograms by exactly those labels.
  const samples = text.replace(/^# TYPE .*$/gm, '');
  for (const family of parsePrometheusTextFormat(samples)) {
    const labels = into.get(family.name) ?? new Map<string, Set<string>>();
    into.set(family.name, labels);
    for (const m of family.metrics)
      for (const [k, v] of Object.entries(m.labels ?? {})) {
        const values = labels.get(k) ?? new Set<string>();
        values.add(v);
        labels.set(k, values);
      }
  }
}

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

describe('Grafana dashboard (deploy/grafana/approval-plus.json) against the metrics the processes export', () => {
  const dashboard = JSON.parse(
    readFileSync(path.join(ROOT, 'deploy', 'grafana', 'approval-plus.json'), 'utf8')
  ) as Dashboard;
  const queries = panelsOf(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).filter((t) => t.expr).map((t) => ({ panel: p.title ?? '?', expr: t.expr! }))
  );
  let t: TestStack;
  const series: Series = new Map();

  before(async () => {
    const [workerPort, sdkPort] = [await freePort(), await freePort()];
    t = await startTestStack({
      env: { WORKER_HTTP_PORT: String(workerPort), TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${sdkPort}` },
    });
    // One grant, start to revoke, so that every path the dashboard watches has run once.
    const mac = '00:1B:44:DB:00:01';
    const instance = t.createApproval(mac);
    const id = workflowIdFor('feishu', instance);
    await t.waitForPhase(id, ['active'], 90_000);
    for (const url of [`${t.ingressUrl}/metrics`, `${t.workerUrl}/metrics`, `http://127.0.0.1:${sdkPort}/metrics`])
      await scrape(url, series);
    const handle = t.client!.workflow.getHandle(id);
    await handle.signal(cancelSignal, { reason: 'test over' });
    await handle.result();
  });
  after(async () => {
    await t?.close();
  });

  it('is a dashboard Grafana imports: title, uid, a Prometheus data-source variable, panels with queries', () => {
    assert.ok(dashboard.title && dashboard.uid);
    assert.ok(
      dashboard.templating?.list.some((v) => v.type === 'datasource'),
      'the data source is a variable, chosen at import'
    );
    assert.ok(queries.length >= 10, `${queries.length} queries`);
  });

  it('watches what an operator needs: events in, grants live, NAC errors and latency, the NAC queue schedule-to-start', () => {
    const used = new Set(queries.flatMap((q) => parseQuery(q.expr).selectors.map((s) => s.metric)));
    for (const m of [
      'approval_plus_events_total',
      'approval_plus_grants_active',
      'approval_plus_nac_requests_total',
      'approval_plus_nac_request_duration_seconds_bucket',
      'temporal_activity_schedule_to_start_latency_seconds_bucket',
    ])
      assert.ok(used.has(m), `the dashboard uses ${m}`);
    const nacQueue = queries.find((q) => /schedule_to_start/.test(q.expr) && q.expr.includes(NAC_TASK_QUEUE));
    assert.ok(nacQueue, `schedule-to-start of ${NAC_TASK_QUEUE}`);
  });

  it('every query parses as PromQL and selects only series the processes export, by labels they carry', () => {
    const problems: string[] = [];
    for (const q of queries) {
      const use = parseQuery(q.expr);
      for (const s of use.selectors) {
        const labels = series.get(s.metric);
        if (!labels) {
          problems.push(`${q.panel}: ${s.metric} is not exported`);
          continue;
        }
        for (const [name, m] of s.matchers) {
          const values = labels.get(name);
          if (!values) problems.push(`${q.panel}: ${s.metric} has no label ${name}`);
          else if (m.op === '=' && !values.has(m.value))
            problems.push(`${q.panel}: ${s.metric}{${name}="${m.value}"} never seen (saw ${[...values].join(', ')})`);
          else if (m.op === '!~' || m.op === '=~') new RegExp(`^(?:${m.value})$`); // a valid RE2-style pattern
        }
        for (const g of use.grouping)
          if (!labels.has(g)) problems.push(`${q.panel}: ${s.metric} is grouped by ${g}, a label it lacks`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
