// deploy.schema_negative: proves that validate.mjs catches what it is for. Each document of
// the fixtures carries the problems it must produce in its annotation smig.test/expect
// ("|" between several); a problem not reported, or a document reported clean, fails.
//   node tests/deploy/validate_negative.mjs FIXTURE.yaml...
import { Failures, describe, importDep } from "./lib.mjs";
import { validateFiles } from "./validate.mjs";

await importDep("kubernetes-models");
const f = new Failures("deploy.schema_negative");
const results = await validateFiles(process.argv.slice(2));
f.expect(results.length > 0, "no fixture documents");
for (const { file, doc, problems } of results) {
  const expected = doc.metadata?.annotations?.["smig.test/expect"];
  if (!f.expect(expected, `${file}: ${describe(doc)} has no smig.test/expect annotation`)) continue;
  for (const want of expected.split("|")) {
    f.expect(problems.some((p) => p.startsWith(want)),
      `${file}: ${describe(doc)}: validate.mjs did not report "${want}" (it reported: ${JSON.stringify(problems)})`);
  }
}
f.finish(`validate.mjs reports every planted mistake in ${results.length} documents`);
