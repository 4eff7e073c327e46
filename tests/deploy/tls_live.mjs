// deploy.tls_live: the manifests' mutual TLS, run for real on this machine. make-tls-secret
// makes the CA and the certificate (openssl checks its names and usages); then each server
// runs from the build tree with its RENDERED config (the certificate directory and the
// addresses rewritten: /etc/smig/tls -> the temp dir, 0.0.0.0:PORT -> 127.0.0.1:<free
// port>), and the RENDERED probe command (smigctl from the build tree, the same rewrites)
// must succeed; smigctl without TLS, without a client certificate, or with a certificate of
// another CA must be refused; and the unmodified-address config without its tls block must
// refuse to start, saying why (plaintext is for unix sockets and loopback only).
//   node tests/deploy/tls_live.mjs BUILD_DIR RENDER_DIR
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import os from "node:os";
import path from "node:path";
import { Failures, deployDir, renderedDocs, requireTool } from "./lib.mjs";

const [buildDir, renderDir] = process.argv.slice(2);
if (!buildDir || !renderDir) {
  console.error("usage: tls_live.mjs BUILD_DIR RENDER_DIR");
  process.exit(2);
}
const f = new Failures("deploy.tls_live");
requireTool(f.check, "openssl", "Debian package openssl");
const bin = {
  smigctl: path.join(buildDir, "tools/smigctl/smigctl"),
  proximity: path.join(buildDir, "services/proximity/smig-proximity"),
  decision: path.join(buildDir, "services/decision/smig-decision"),
  migrator: path.join(buildDir, "services/migrator/smig-migrator"),
  dataplane: path.join(buildDir, "dataplane/daemon/smig-dataplane"),
};
for (const [name, file] of Object.entries(bin)) {
  if (!existsSync(file)) {
    console.error(`${f.check}: FAIL: ${file} is missing: build ${name} first`);
    process.exit(1);
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), "smig-tls-live-"));
const children = new Set();
function cleanup() {
  for (const c of children) c.kill("SIGKILL");
  rmSync(tmp, { recursive: true, force: true });
}
process.on("exit", cleanup);
process.on("SIGTERM", () => process.exit(1));

const run = (cmd, args, timeout = 15000) => spawnSync(cmd, args, { encoding: "utf8", timeout });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = (udp) => new Promise((resolve, reject) => {
  if (udp) {
    const s = createSocket("udp4");
    s.on("error", reject);
    s.bind(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  } else {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
  }
});

// 1. make-tls-secret: two runs into two directories are two CAs (the second one's
// certificate is "a client of another CA").
const script = path.join(deployDir, "k8s/make-tls-secret");
const tls = path.join(tmp, "tls");
const other = path.join(tmp, "other");
for (const dir of [tls, other]) {
  const r = run(script, [`--out=${dir}`]);
  if (r.status !== 0) {
    console.error(`${f.check}: FAIL: make-tls-secret --out=${dir} exited ${r.status}: ${r.stderr}`);
    process.exit(1);
  }
  f.expect(/^kubectl -n smig create secret generic smig-tls /.test(r.stdout) &&
    ["ca.crt", "tls.crt", "tls.key"].every((k) => r.stdout.includes(`--from-file=${k}=${dir}/${k}`)),
  `make-tls-secret printed no kubectl command making smig-tls from ca.crt, tls.crt, tls.key: ${r.stdout}`);
}
f.expect(run(script, ["--days=0", `--out=${path.join(tmp, "bad")}`]).status !== 0, "make-tls-secret --days=0 must fail");
const text = run("openssl", ["x509", "-in", `${tls}/tls.crt`, "-noout", "-ext", "subjectAltName,extendedKeyUsage"]).stdout;
const base = await renderedDocs(renderDir, "base");
const grpcServices = base.filter((d) => d.kind === "Service" && d.spec.ports.some((p) => p.appProtocol === "grpc")).map((d) => d.metadata.name);
for (const s of grpcServices) {
  for (const n of [s, `${s}.smig.svc`, `${s}.smig.svc.cluster.local`]) {
    f.expect(new RegExp(`DNS:${n.replaceAll(".", "\\.")}(,|$)`, "m").test(text), `tls.crt has no DNS:${n}`);
  }
}
for (const u of ["TLS Web Server Authentication", "TLS Web Client Authentication"]) f.expect(text.includes(u), `tls.crt lacks ${u}`);
f.expect(run("openssl", ["verify", "-CAfile", `${tls}/ca.crt`, `${tls}/tls.crt`]).status === 0, "tls.crt does not verify against ca.crt");
f.expect(run("openssl", ["verify", "-CAfile", `${tls}/ca.crt`, `${other}/tls.crt`]).status !== 0, "the second run's certificate verifies against the first CA");

// 2. Each server with its rendered config and probe.
async function component(renderName, workload) {
  const docs = await renderedDocs(renderDir, renderName);
  const w = docs.find((d) => ["Deployment", "DaemonSet"].includes(d.kind) && d.metadata.name === workload);
  const c = w.spec.template.spec.containers[0];
  const config = c.command.find((a) => a.startsWith("--config=")).slice("--config=".length);
  const cmName = w.spec.template.spec.volumes.find((v) => v.configMap).configMap.name;
  const template = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name === cmName).data[path.posix.basename(config)];
  const name = workload.replace(/^smig-/, "");
  return { name, c, template, at: `${renderName}: ${workload}` };
}

// The rendered config with the rewrites; ports maps each 0.0.0.0 port to its free one.
async function rewrite(template, ports, { keepGrpc = false } = {}) {
  const cfg = JSON.parse(template.replaceAll("@POD_NAME@", "tls-live").replaceAll("@NODE_NAME@", "tls-live")
    .replaceAll("/etc/smig/tls", tls));
  for (const key of ["grpc_address", "metrics_address"]) {
    const m = /^0\.0\.0\.0:(\d+)$/.exec(cfg[key] ?? "");
    if (!m || (keepGrpc && key === "grpc_address")) continue;
    ports[m[1]] ??= await freePort();
    cfg[key] = `127.0.0.1:${ports[m[1]]}`;
  }
  // The edge's SCTP-over-UDP port (userland): a free one, not the node's 9899.
  if (cfg.udp_encaps_port) cfg.udp_encaps_port = await freePort(true);
  // The PMM's discovery: no cluster here; it lists the Service's EndpointSlices from a
  // closed port (failures are counted, the server serves on), in namespace smig.
  if (cfg.discovery?.kubernetes) cfg.discovery.kubernetes.namespace = "smig";
  return cfg;
}

function start(name, cfg, suffix = "") {
  const file = path.join(tmp, `${name}${suffix}.json`);
  writeFileSync(file, JSON.stringify(cfg, null, 1));
  const log = path.join(tmp, `${name}${suffix}.log`);
  const fd = openSync(log, "w");
  const env = { ...process.env, SMIG_KUBERNETES_API: `http://127.0.0.1:${closedPort}` };
  const child = spawn(bin[name], [`--config=${file}`], { stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  children.add(child);
  child.exited = new Promise((r) => child.on("exit", (code, sig) => { children.delete(child); r(code ?? sig); }));
  child.log = () => readFileSync(log, "utf8");
  return child;
}

async function stop(child) {
  if (!children.has(child)) return;
  child.kill("SIGTERM");
  if (await Promise.race([child.exited, sleep(10000).then(() => "timeout")]) === "timeout") child.kill("SIGKILL");
}

// The probe's argv with the rewrites, smigctl from the build tree.
const probeArgv = (probe, ports) => probe.exec.command.map((a, i) => (i === 0 ? bin.smigctl
  : a.replaceAll("/etc/smig/tls", tls).replace(/^127\.0\.0\.1:(\d+)$/, (m, p) => `127.0.0.1:${ports[p] ?? p}`)));

const closedPort = await freePort();
async function check({ name, c, template, at }) {
  const ports = {};
  const cfg = await rewrite(template, ports);
  const child = start(name, cfg);
  const probe = probeArgv(c.readinessProbe, ports);
  let last;
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline && children.has(child)) {
    last = run(probe[0], probe.slice(1), 10000);
    if (last.status === 0) break;
    await sleep(250);
  }
  if (!f.expect(last?.status === 0, `${at}: its readiness probe never passed (${probe.join(" ")}: ${last?.stderr?.trim()}); server log: ${child.log().slice(-2000)}`)) {
    await stop(child);
    return;
  }
  const live = probeArgv(c.livenessProbe, ports);
  f.expect(run(live[0], live.slice(1)).status === 0, `${at}: its liveness probe failed`);
  const target = probe.at(-1);
  const flag = (k) => probe.find((a) => a.startsWith(`--${k}=`));
  const refused = (why, flags) => {
    const r = run(bin.smigctl, [...flags, "--timeout=2s", "health", target]);
    f.expect(r.status !== 0, `${at}: smigctl health ${why} was answered: ${r.stdout.trim()}`);
  };
  refused("without TLS (plaintext)", []);
  refused("without a client certificate", [flag("ca"), flag("server_name")]);
  refused("with a client certificate of another CA", [flag("ca"), `--cert=${other}/tls.crt`, `--key=${other}/tls.key`, flag("server_name")]);
  refused("verifying a name the certificate lacks", [flag("ca"), flag("cert"), flag("key"), "--server_name=not-smig.example"]);
  await stop(child);

  // Its non-loopback address, the tls block removed: it must refuse to start.
  const plain = await rewrite(template, {}, { keepGrpc: true });
  delete plain.tls;
  const p = start(name, plain, "-plaintext");
  const code = await Promise.race([p.exited, sleep(10000).then(() => "running")]);
  if (code === "running") await stop(p);
  f.expect(code !== 0 && code !== "running" && /TLS/.test(p.log()),
    `${at}: serving ${plain.grpc_address} without tls must refuse to start with a message about TLS (got ${code}: ${p.log().slice(-500)})`);
  console.log(`${f.check}: ${at}: probe passes over mutual TLS; plaintext, no client certificate, another CA, a wrong name refused; plaintext on ${plain.grpc_address} refused at start`);
}

await check(await component("base", "smig-proximity"));
// Against the base's placeholder etcd (resolves nowhere): the MDM and the SMM serve health
// without a store, as they do in a cluster while etcd is down.
await check(await component("base", "smig-decision"));
await check(await component("base", "smig-migrator"));
await check(await component("userland", "smig-dataplane"));
cleanup();
f.finish("make-tls-secret's certificate, and the PMM, MDM, SMM and userland edge with their rendered configs and probes: mutual TLS only");
