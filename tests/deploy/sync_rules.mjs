// deploy.rules_sync: the PrometheusRule of the kustomize base carries exactly the groups of
// deploy/prometheus/rules.yaml, the one source of the alerts.
//   node tests/deploy/sync_rules.mjs           check (fails on any difference)
//   node tests/deploy/sync_rules.mjs --write   rewrite the PrometheusRule from rules.yaml
import { isDeepStrictEqual } from "node:util";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Failures, deployDir, parseYamlDocs, repo } from "./lib.mjs";

const source = path.join(deployDir, "prometheus/rules.yaml");
const target = path.join(deployDir, "k8s/base/prometheusrule.yaml");
const rel = (p) => path.relative(repo, p);

function generate() {
  // rules.yaml minus its opening comment, indented under spec: (comments on rules stay).
  const body = readFileSync(source, "utf8").split("\n");
  while (body.length && (body[0].startsWith("#") || body[0] === "")) body.shift();
  return [
    `# Generated from ${rel(source)} by tests/deploy/sync_rules.mjs --write: edit that`,
    "# file, not this one (the deploy.rules_sync test fails when they differ).",
    "apiVersion: monitoring.coreos.com/v1",
    "kind: PrometheusRule",
    "metadata:",
    "  name: smig",
    "spec:",
    ...body.map((l) => (l ? `  ${l}` : l)),
  ].join("\n");
}

if (process.argv[2] === "--write") {
  writeFileSync(target, generate());
  console.log(`wrote ${rel(target)}`);
  process.exit(0);
}
const f = new Failures("deploy.rules_sync");
const [rules] = await parseYamlDocs(readFileSync(source, "utf8"), source);
const docs = await parseYamlDocs(readFileSync(target, "utf8"), target);
const hint = `run node tests/deploy/sync_rules.mjs --write`;
if (f.expect(docs.length === 1 && docs[0].kind === "PrometheusRule", `${rel(target)} must hold one PrometheusRule`)) {
  const spec = docs[0].spec ?? {};
  f.expect(isDeepStrictEqual(Object.keys(spec), ["groups"]), `${rel(target)}: spec has more than groups`);
  const want = rules.groups ?? [];
  const got = spec.groups ?? [];
  f.expect(want.length > 0, `${rel(source)} has no groups`);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    f.expect(isDeepStrictEqual(want[i], got[i]),
      `group ${want[i]?.name ?? got[i]?.name} differs between ${rel(source)} and ${rel(target)}: ${hint}`);
  }
}
f.finish(`${rel(target)} carries the groups of ${rel(source)}`);
