// deploy.metrics_contract: every metric and label that the dashboard, the alert rules and
// the rule tests use is in deploy/metrics.txt, the list of what the code exports.
//   node tests/deploy/check_metrics_contract.mjs
import { readFileSync } from "node:fs";
import path from "node:path";
import { Failures, deployDir, readYaml, repo } from "./lib.mjs";
import { checkExpr, contractFile, loadContract, resolveMetric } from "./promql.mjs";

const f = new Failures("deploy.metrics_contract");
let contract;
try {
  contract = loadContract();
} catch (e) {
  f.add(e.message);
  f.finish();
}
const rel = (p) => path.relative(repo, p);
let exprs = 0;
const check = (where, expr, legend) => {
  exprs++;
  for (const p of checkExpr(contract, expr, legend)) f.add(`${where}: ${p}`);
};

const dashFile = path.join(deployDir, "grafana/smig-migrations.json");
const dash = JSON.parse(readFileSync(dashFile, "utf8"));
for (const p of (dash.panels ?? []).flatMap((p) => (p.type === "row" ? p.panels ?? [] : [p]))) {
  for (const t of p.targets ?? []) if (t.expr) check(`${rel(dashFile)}: panel "${p.title}" ${t.refId}`, t.expr, t.legendFormat);
}
for (const a of dash.annotations?.list ?? []) {
  if (a.expr) check(`${rel(dashFile)}: annotation "${a.name}"`, a.expr, `${a.titleFormat ?? ""} ${a.textFormat ?? ""}`);
}

const rulesFile = path.join(deployDir, "prometheus/rules.yaml");
for (const g of (await readYaml(rulesFile)).groups ?? []) {
  for (const r of g.rules ?? []) {
    const where = `${rel(rulesFile)}: ${r.alert ?? r.record}`;
    // Alert texts may use the labels the expression keeps: check them like a legend.
    const texts = Object.values(r.annotations ?? {}).join(" ").replace(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, "{{$1}}");
    check(where, r.expr, texts);
  }
}

// The rule tests feed series by name: they must be series the code exports too.
const testFile = path.join(repo, "tests/deploy/rules_test.yaml");
for (const t of (await readYaml(testFile)).tests ?? []) {
  for (const s of t.input_series ?? []) check(`${rel(testFile)}: series ${s.series}`, s.series);
}

// Nothing in the contract that nothing watches would be a hole in the dashboard; only warn.
const used = new Set();
for (const e of [...JSON.stringify(dash).matchAll(/smig_[a-z0-9_]+/g)].map((m) => m[0])) {
  const r = resolveMetric(contract, e);
  if (r) used.add(r.name);
}
const unused = [...contract.keys()].filter((n) => !used.has(n));
if (unused.length) console.log(`deploy.metrics_contract: note: not on the dashboard: ${unused.join(", ")}`);
f.finish(`${exprs} expressions use only the ${contract.size} metrics of ${rel(contractFile)}`);
