// deploy.render: `kubectl kustomize` renders the base and every overlay into OUT_DIR
// (<name>.yaml each), which the schema and policy checks read.
//   node tests/deploy/render.mjs OUT_DIR
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Failures, kustomizations, requireTool, run } from "./lib.mjs";

const out = process.argv[2];
if (!out) {
  console.error("usage: render.mjs OUT_DIR");
  process.exit(2);
}
const f = new Failures("deploy.render");
requireTool(f.check, "kubectl", "the machine image ships kubectl with kustomize v5; Debian's kubernetes-client (1.20, kustomize v2) is too old");

// The manifests use kustomize v4+ fields (labels, inline patches with targets).
const version = run("kubectl", ["version", "--client"]);
const m = /Kustomize Version: v(\d+)/.exec(version);
f.expect(m && Number(m[1]) >= 4, `kubectl's kustomize must be v4 or newer, got: ${version.trim()}`);

mkdirSync(out, { recursive: true });
for (const k of kustomizations()) {
  try {
    const yaml = run("kubectl", ["kustomize", k.dir]);
    writeFileSync(path.join(out, `${k.name}.yaml`), yaml);
  } catch (e) {
    f.add(`kubectl kustomize ${path.relative(process.cwd(), k.dir)}: ${e.stderr || e.message}`);
  }
}
f.finish(`rendered ${kustomizations().map((k) => k.name).join(", ")} into ${out}`);
