// deploy.dashboard: deploy/grafana/smig-migrations.json is a dashboard Grafana can load
// both ways (sidecar ConfigMap, or Import): it parses, takes its Prometheus from the
// datasource variable DS_PROMETHEUS, and every panel queries something.
//   node tests/deploy/check_dashboard.mjs
import { readFileSync } from "node:fs";
import path from "node:path";
import { Failures, deployDir } from "./lib.mjs";

const file = path.join(deployDir, "grafana/smig-migrations.json");
const f = new Failures("deploy.dashboard");
let dash;
try {
  dash = JSON.parse(readFileSync(file, "utf8"));
} catch (e) {
  f.add(`${file} does not parse: ${e.message}`);
  f.finish();
}
const ds = { type: "prometheus", uid: "${DS_PROMETHEUS}" };
const sameDs = (d) => d?.type === ds.type && d?.uid === ds.uid;

f.expect(typeof dash.uid === "string" && dash.uid.length > 0 && dash.uid.length <= 40, "uid: 1 to 40 characters");
f.expect(dash.title, "no title");
f.expect(dash.schemaVersion >= 36 && dash.schemaVersion <= 41, `schemaVersion ${dash.schemaVersion}: want one Grafana 9-11 reads (39)`);
const dsVar = (dash.templating?.list ?? []).find((v) => v.name === "DS_PROMETHEUS");
f.expect(dsVar?.type === "datasource" && dsVar?.query === "prometheus",
  "templating needs variable DS_PROMETHEUS of type datasource, query prometheus");

const panels = (dash.panels ?? []).flatMap((p) => (p.type === "row" ? p.panels ?? [] : [p]));
f.expect(panels.length > 0, "no panels");
const ids = new Set();
for (const p of panels) {
  const name = `panel ${p.id} "${p.title}"`;
  f.expect(p.title, `panel ${p.id} has no title`);
  f.expect(!ids.has(p.id), `${name}: id used twice`);
  ids.add(p.id);
  f.expect(p.gridPos && ["x", "y", "w", "h"].every((k) => Number.isInteger(p.gridPos[k])), `${name}: gridPos x, y, w, h`);
  f.expect(sameDs(p.datasource), `${name}: datasource must be ${JSON.stringify(ds)}`);
  const targets = p.targets ?? [];
  f.expect(targets.length > 0, `${name}: no targets`);
  const refIds = new Set();
  for (const t of targets) {
    f.expect(typeof t.expr === "string" && t.expr.trim(), `${name}: target ${t.refId} has no expr`);
    f.expect(t.refId && !refIds.has(t.refId), `${name}: refIds must be set and distinct`);
    refIds.add(t.refId);
    f.expect(!t.datasource || sameDs(t.datasource), `${name}: target ${t.refId} uses another datasource`);
  }
}
// Individual migrations appear as annotations, from the metrics.
const anns = (dash.annotations?.list ?? []).filter((a) => !a.builtIn);
f.expect(anns.some((a) => sameDs(a.datasource) && /smig_migrations_total/.test(a.expr ?? "")),
  "no annotation query on smig_migrations_total");
f.finish(`${panels.length} panels, ${anns.length} annotation queries`);
