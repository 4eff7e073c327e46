// The metrics contract (deploy/metrics.txt) and just enough PromQL lexing to check the
// metric and label names a query uses against it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { deployDir } from "./lib.mjs";

export const contractFile = path.join(deployDir, "metrics.txt");

// Labels Prometheus adds to every scraped series (the ServiceMonitor adds node).
export const targetLabels = new Set(["job", "instance", "node", "namespace", "pod", "service", "container", "endpoint"]);

// name -> {type, labels: Set}
export function loadContract() {
  const metrics = new Map();
  for (const [i, raw] of readFileSync(contractFile, "utf8").split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [name, type, labels] = line.split(/\s+/);
    if (!/^smig_[a-z0-9_]+$/.test(name) || !["counter", "gauge", "histogram"].includes(type) || !labels) {
      throw new Error(`${contractFile}:${i + 1}: want "name type labels exporter meaning": ${raw}`);
    }
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`${contractFile}:${i + 1}: a counter ends in _total`);
    metrics.set(name, { type, labels: new Set(labels === "-" ? [] : labels.split(",")) });
  }
  return metrics;
}

// The contract entry behind a series name (histograms: _bucket, _sum, _count), or null.
export function resolveMetric(contract, name) {
  if (contract.has(name)) return { name, ...contract.get(name), bucket: false };
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && contract.get(m[1])?.type === "histogram") {
    return { name: m[1], ...contract.get(m[1]), bucket: m[2] === "bucket" };
  }
  return null;
}

const keywords = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool",
  "and", "or", "unless", "offset", "inf", "nan"]);

// {metrics: [names], labels: [names]} used by one PromQL expression.
export function lex(expr) {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')  // string literals
    .replace(/\$\{?__?\w+\}?/g, "0")                               // Grafana variables
    .replace(/\[[^\]]*\]/g, "")                                      // ranges, subqueries
    .replace(/(?<![\w:])\d[\w.]*/g, "0");                             // numbers, durations (offset 5m)
  const labels = [];
  // Matchers: {label op "value", ...}
  s = s.replace(/\{([^}]*)\}/g, (_, body) => {
    for (const m of body.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1]);
    return " ";
  });
  // Grouping and matching lists: by (a, b), on(a), ignoring(a), group_left(a) ...
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_, _kw, list) => {
    for (const l of list.split(",").map((x) => x.trim()).filter(Boolean)) labels.push(l);
    return " ";
  });
  const metrics = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    const [whole, call] = m;
    const ident = whole.replace(/\s*\($/, "");
    if (call || keywords.has(ident.toLowerCase())) continue;  // functions, aggregations, keywords
    metrics.push(ident);
  }
  return { metrics, labels };
}

// Problems of one expression against the contract; `legend` is a Grafana legendFormat.
export function checkExpr(contract, expr, legend = "") {
  const out = [];
  const { metrics, labels } = lex(expr);
  if (!metrics.length) out.push(`no metric in ${JSON.stringify(expr)}`);
  const allowed = new Set(targetLabels);
  for (const name of metrics) {
    const entry = resolveMetric(contract, name);
    if (!entry) {
      out.push(`metric ${name} is not in deploy/metrics.txt`);
      continue;
    }
    for (const l of entry.labels) allowed.add(l);
    if (entry.bucket) allowed.add("le");
  }
  for (const l of labels) if (!allowed.has(l)) out.push(`label ${l} is not a label of ${metrics.join(", ")}`);
  for (const m of legend.matchAll(/\{\{\s*([a-zA-Z_]\w*)\s*\}\}/g)) {
    if (!allowed.has(m[1])) out.push(`legend uses label ${m[1]}, which ${metrics.join(", ")} do not have`);
  }
  return out;
}
