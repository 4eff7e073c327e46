// deploy.manifests: what the rendered manifests must say beyond their schemas: the
// security context of every pod, probes, resources, that every reference resolves
// (ConfigMaps, config files, named ports, selectors, programs in the image), minimal RBAC,
// monitoring of all four components, mutual TLS on every gRPC port, and what each overlay
// is for.
//   node tests/deploy/check_manifests.mjs RENDER_DIR
import { readFileSync } from "node:fs";
import path from "node:path";
import { Failures, deployDir, describe, kustomizations, renderedDocs } from "./lib.mjs";
import { buildTreeInImage, copiedBinaries, parseDockerfile, stages } from "./check_dockerfile.mjs";

const renderDir = process.argv[2];
if (!renderDir) {
  console.error("usage: check_manifests.mjs RENDER_DIR");
  process.exit(2);
}
const f = new Failures("deploy.manifests");

// Programs a container may run: the binaries the image gets, and the base image's shell.
const dockerStages = stages(parseDockerfile());
const programs = new Set(["sh", ...copiedBinaries(dockerStages, buildTreeInImage(dockerStages)).map((c) => c.name)]);
// Created per cluster, so never in the rendered output: smig-tls, the pods' certificate
// (deploy/k8s/make-tls-secret, or cert-manager in overlay cert-manager, checked below). The
// data plane has no shared secret (docs/protocol.md, "Session keys").
const externalSecrets = new Set(["smig-tls"]);
const components = ["smig-dataplane", "smig-proximity", "smig-decision", "smig-migrator"];
const dashboard = readFileSync(path.join(deployDir, "grafana/smig-migrations.json"), "utf8");

// Replicated behind etcd (config store): two replicas, one leads (docs/deploy.md).
const replicated = { "smig-migrator": "migrator.json", "smig-decision": "decision.json" };

const matches = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

function checkWorkload(where, w, byKind, overlay) {
  const pod = w.spec.template.spec;
  const podLabels = w.spec.template.metadata?.labels ?? {};
  const at = `${where}: ${describe(w)}`;
  f.expect(matches(w.spec.selector?.matchLabels, podLabels), `${at}: selector does not match its pod labels`);
  const psc = pod.securityContext ?? {};
  f.expect(psc.runAsNonRoot === true, `${at}: pod securityContext.runAsNonRoot must be true`);
  f.expect(psc.seccompProfile?.type === "RuntimeDefault", `${at}: pod seccompProfile must be RuntimeDefault`);
  // Only the PMM talks to the API server.
  if (pod.serviceAccountName) {
    f.expect(w.metadata.name === "smig-proximity", `${at}: only smig-proximity has a service account`);
  } else {
    f.expect(pod.automountServiceAccountToken === false, `${at}: automountServiceAccountToken must be false`);
  }
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  for (const v of volumes.values()) {
    if (v.configMap && overlay) {
      f.expect(byKind("ConfigMap").some((c) => c.metadata.name === v.configMap.name), `${at}: volume ${v.name}: no ConfigMap ${v.configMap.name}`);
    }
    if (v.secret) f.expect(externalSecrets.has(v.secret.secretName), `${at}: volume ${v.name}: unexpected Secret ${v.secret.secretName}`);
  }
  const all = [...(pod.initContainers ?? []).map((c) => ({ c, init: true })), ...pod.containers.map((c) => ({ c, init: false }))];
  for (const { c, init } of all) {
    const cat = `${at}: container ${c.name}`;
    const sc = c.securityContext ?? {};
    f.expect(sc.allowPrivilegeEscalation === false, `${cat}: allowPrivilegeEscalation must be false`);
    f.expect(sc.readOnlyRootFilesystem === true, `${cat}: readOnlyRootFilesystem must be true`);
    f.expect(sc.capabilities?.drop?.includes("ALL"), `${cat}: capabilities must drop ALL`);
    f.expect(!sc.capabilities?.add?.length && !sc.privileged, `${cat}: no capability added, not privileged`);
    for (const kind of ["requests", "limits"]) {
      f.expect(c.resources?.[kind]?.cpu && c.resources?.[kind]?.memory, `${cat}: resources.${kind} cpu and memory`);
    }
    f.expect(programs.has(c.command?.[0]), `${cat}: runs ${c.command?.[0]}, which the image does not have (${[...programs].join(", ")})`);
    const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
    for (const m of mounts.values()) f.expect(volumes.has(m.name), `${cat}: mounts unknown volume ${m.name}`);
    // --config=FILE: a ConfigMap key, or written by an init container into a shared volume.
    const config = (c.command ?? []).find((a) => a.startsWith("--config="))?.slice("--config=".length);
    if (config) {
      // The directory mounted, or the file itself (a subPath of a ConfigMap volume).
      const mount = mounts.get(path.posix.dirname(config)) ?? mounts.get(config);
      const key = mount?.subPath ?? path.posix.basename(config);
      const vol = mount && volumes.get(mount.name);
      if (!f.expect(vol, `${cat}: --config=${config}: nothing mounted at ${path.posix.dirname(config)} or ${config}`)) continue;
      if (vol.configMap && overlay) {
        const cm = byKind("ConfigMap").find((x) => x.metadata.name === vol.configMap.name);
        f.expect(cm?.data?.[key] !== undefined, `${cat}: ConfigMap ${vol.configMap.name} has no key ${key}`);
      } else if (!vol.configMap) {
        const writer = (pod.initContainers ?? []).find((i) =>
          (i.volumeMounts ?? []).some((m) => m.name === vol.name && !m.readOnly) && (i.command ?? []).join(" ").includes(config));
        f.expect(writer, `${cat}: --config=${config}: no init container writes it into volume ${vol.name}`);
      }
    }
    if (init) continue;
    f.expect((c.ports ?? []).some((p) => p.name === "metrics"), `${cat}: no port named metrics`);
  }
  return { podLabels, ports: all.flatMap(({ c }) => c.ports ?? []) };
}

// etcd as a StatefulSet (overlay etcd): its own image, so not checkWorkload's rules about
// smig's programs and gRPC probes; the same pod security, and what a 3-member cluster for
// 1 s leases needs.
function checkEtcd(where, sts, byKind) {
  const pod = sts.spec.template.spec;
  const at = `${where}: ${describe(sts)}`;
  const podLabels = sts.spec.template.metadata?.labels ?? {};
  f.expect(matches(sts.spec.selector?.matchLabels, podLabels), `${at}: selector does not match its pod labels`);
  f.expect(sts.spec.replicas === 3, `${at}: want 3 members`);
  f.expect(sts.spec.podManagementPolicy === "Parallel", `${at}: podManagementPolicy must be Parallel (a new cluster needs a quorum up at once)`);
  f.expect((sts.spec.volumeClaimTemplates ?? []).length > 0, `${at}: no volumeClaimTemplates (etcd's data must outlive the pod)`);
  const psc = pod.securityContext ?? {};
  f.expect(psc.runAsNonRoot === true && psc.seccompProfile?.type === "RuntimeDefault", `${at}: pod must run as non-root with RuntimeDefault seccomp`);
  f.expect(pod.automountServiceAccountToken === false && !pod.serviceAccountName, `${at}: etcd needs no service account token`);
  const c = pod.containers[0];
  f.expect(/^gcr\.io\/etcd-development\/etcd:v3\.[45]\.\d+$/.test(c.image ?? ""), `${at}: image must be the official etcd pinned to v3.4.x or v3.5.x, got ${c.image}`);
  const sc = c.securityContext ?? {};
  f.expect(sc.allowPrivilegeEscalation === false && sc.readOnlyRootFilesystem === true && sc.capabilities?.drop?.includes("ALL"),
    `${at}: container security context (no escalation, read-only root, drop ALL)`);
  for (const kind of ["requests", "limits"]) f.expect(c.resources?.[kind]?.cpu && c.resources?.[kind]?.memory, `${at}: resources.${kind} cpu and memory`);
  for (const probe of ["livenessProbe", "readinessProbe"]) f.expect(c[probe], `${at}: no ${probe}`);
  const args = [...(c.command ?? []), ...(c.args ?? [])];
  for (const flag of ["--heartbeat-interval=50", "--election-timeout=500"]) {
    f.expect(args.includes(flag), `${at}: needs ${flag} (else etcd raises smig's 1 s leases to 2 s)`);
  }
  const svc = byKind("Service").find((s) => s.metadata.name === sts.spec.serviceName);
  f.expect(svc?.spec.clusterIP === "None" && svc?.spec.publishNotReadyAddresses === true,
    `${at}: serviceName ${sts.spec.serviceName} must be a headless Service publishing not-ready addresses`);
  f.expect(byKind("PodDisruptionBudget").some((p) => matches(p.spec.selector?.matchLabels, podLabels) && p.spec.maxUnavailable === 1),
    `${at}: want a PodDisruptionBudget with maxUnavailable 1`);
  return { podLabels, ports: c.ports ?? [] };
}

// The SMM and the MDM run as two replicas with a rollout that keeps one up, readiness
// that is not leadership, a PDB that lets one go, and store.replica_id = the pod name.
function checkReplicated(where, d, byKind, overlay) {
  const at = `${where}: ${describe(d)}`;
  f.expect(d.spec.replicas === 2, `${at}: want 2 replicas`);
  const ru = d.spec.strategy?.rollingUpdate;
  f.expect(d.spec.strategy?.type === "RollingUpdate" && ru?.maxSurge === 1 && ru?.maxUnavailable === 0,
    `${at}: want RollingUpdate with maxSurge 1, maxUnavailable 0`);
  const pod = d.spec.template.spec;
  f.expect(pod.affinity?.podAntiAffinity || pod.topologySpreadConstraints?.length, `${at}: no anti-affinity or topology spread`);
  const pdbs = byKind("PodDisruptionBudget").filter((p) => matches(p.spec.selector?.matchLabels, d.spec.template.metadata.labels));
  f.expect(pdbs.length === 1 && pdbs[0].spec.maxUnavailable === 1, `${at}: want one PodDisruptionBudget with maxUnavailable 1`);
  const init = (pod.initContainers ?? []).find((i) => (i.env ?? []).some((e) => e.name === "POD_NAME" && e.valueFrom?.fieldRef?.fieldPath === "metadata.name"));
  f.expect(init && (init.command ?? []).join(" ").includes("@POD_NAME@"), `${at}: no init container filling @POD_NAME@ from metadata.name`);
  if (!overlay) return;
  const tmpl = (pod.volumes ?? []).find((v) => v.name === "config-template")?.configMap?.name;
  const cm = byKind("ConfigMap").find((c) => c.metadata.name === tmpl);
  const cfg = cm?.data?.[replicated[d.metadata.name]];
  if (!f.expect(cfg, `${at}: no config template ${replicated[d.metadata.name]}`)) return;
  const store = JSON.parse(cfg).store ?? {};
  f.expect(store.endpoints?.length && store.replica_id === "@POD_NAME@", `${at}: config needs store.endpoints and store.replica_id "@POD_NAME@"`);
  const etcd = byKind("StatefulSet").find((s) => s.metadata.name === "smig-etcd");
  if (etcd) {
    const members = [...Array(etcd.spec.replicas).keys()].map((i) => `${etcd.metadata.name}-${i}.${etcd.spec.serviceName}:2379`);
    f.expect(JSON.stringify(store.endpoints) === JSON.stringify(members), `${at}: store.endpoints must list the etcd members ${members.join(", ")}`);
  }
}

// Mutual TLS (docs/deploy.md, "TLS"): every smig container mounts the Secret smig-tls at
// /etc/smig/tls; its probes are `smigctl health` over TLS on its own gRPC port (kubelet's
// gRPC probes speak no TLS); every config serving gRPC off the loopback has tls with a
// client CA, and every client_tls names the mounted files. Returns problems, so that the
// planted negative below can prove each rule bites.
const tlsDir = "/etc/smig/tls";
const tlsFiles = { cert_file: `${tlsDir}/tls.crt`, key_file: `${tlsDir}/tls.key`, client_ca_file: `${tlsDir}/ca.crt` };
const clientTlsFiles = { ca_file: `${tlsDir}/ca.crt`, cert_file: `${tlsDir}/tls.crt`, key_file: `${tlsDir}/tls.key` };
const probeFlags = { ca: clientTlsFiles.ca_file, cert: clientTlsFiles.cert_file, key: clientTlsFiles.key_file };
const isLocal = (a) => a.startsWith("unix:") || /^(127(\.\d+){3}|\[::1\]|localhost):\d+$/.test(a);
// The names the certificate carries for a Service (make-tls-secret and the Certificate).
const serviceNames = (name) => [name, `${name}.smig.svc`, `${name}.smig.svc.cluster.local`];
const grpcPort = (p) => p.appProtocol === "grpc";

// The gRPC Services of smig's components (not etcd's: its client speaks plaintext), whose
// names the certificate must carry.
function grpcServices(docs) {
  return docs.filter((d) => d.kind === "Service" && d.spec.ports.some(grpcPort) && components.includes(d.spec.selector?.["app.kubernetes.io/name"]))
    .map((d) => d.metadata.name).sort();
}

function tlsProblems(docs) {
  const out = [];
  const byKind = (kind) => docs.filter((d) => d.kind === kind);
  const certNames = new Set(grpcServices(docs).flatMap(serviceNames));
  for (const s of byKind("Service").filter((x) => components.includes(x.spec.selector?.["app.kubernetes.io/name"]))) {
    for (const p of s.spec.ports) {
      if (["grpc", "agent"].includes(p.name) && !grpcPort(p)) out.push(`${describe(s)} port ${p.name}: appProtocol must stay grpc`);
    }
  }
  for (const w of [...byKind("Deployment"), ...byKind("DaemonSet")]) {
    const pod = w.spec.template.spec;
    const labels = w.spec.template.metadata?.labels ?? {};
    const ownNames = byKind("Service").filter((s) => s.spec.ports.some(grpcPort) && matches(s.spec.selector, labels))
      .flatMap((s) => serviceNames(s.metadata.name));
    const tlsVolume = (pod.volumes ?? []).find((v) => v.secret?.secretName === "smig-tls");
    const configMaps = (pod.volumes ?? []).filter((v) => v.configMap).map((v) => byKind("ConfigMap").find((c) => c.metadata.name === v.configMap.name));
    for (const c of pod.containers) {
      const at = `${describe(w)}: container ${c.name}`;
      const m = (c.volumeMounts ?? []).find((x) => x.mountPath === tlsDir);
      if (!tlsVolume || m?.name !== tlsVolume.name || m.readOnly !== true) out.push(`${at}: must mount Secret smig-tls read-only at ${tlsDir}`);
      // Its configs (the ConfigMaps of its pod; absent in the base for the data plane).
      const configs = configMaps.flatMap((cm) => Object.entries(cm?.data ?? {}).filter(([k]) => k.endsWith(".json")))
        .map(([k, v]) => [k, JSON.parse(v)]);
      const port = (c.ports ?? []).find((p) => ["grpc", "agent"].includes(p.name))?.containerPort;
      if (!port) out.push(`${at}: no container port named grpc or agent`);
      for (const [key, cfg] of configs) {
        const where = `${at}: ${key}`;
        const addr = cfg.grpc_address ?? "";
        if (!addr.endsWith(`:${port}`)) out.push(`${where}: grpc_address ${addr} is not on its gRPC port ${port}`);
        if (!isLocal(addr)) {
          for (const [k, want] of Object.entries(tlsFiles)) {
            if (cfg.tls?.[k] !== want) out.push(`${where}: serves plaintext gRPC on ${addr}: tls.${k} must be ${want}`);
          }
        }
        // Every server it dials serves TLS (the rule above), so each client must speak it.
        const dials = ["proximity_address", "migrator_address"].some((k) => cfg[k]) || key === "migrator.json" || cfg.proximity?.pmm_address;
        const clientTls = cfg.client_tls ?? cfg.proximity?.client_tls;
        if (dials || clientTls) {
          for (const [k, want] of Object.entries(clientTlsFiles)) {
            if (clientTls?.[k] !== want) out.push(`${where}: dials smig servers: client_tls.${k} must be ${want}`);
          }
        }
        // The SMM dials data planes at node IPs: the name it verifies must be theirs.
        if (key === "migrator.json" && !serviceNames("smig-dataplane").includes(cfg.client_tls?.server_name)) {
          out.push(`${where}: client_tls.server_name must name the Service smig-dataplane (the SMM dials agents by IP)`);
        }
        if (clientTls?.server_name && !certNames.has(clientTls.server_name)) out.push(`${where}: client_tls.server_name ${clientTls.server_name} is not a name of the certificate`);
      }
      for (const probe of ["livenessProbe", "readinessProbe"]) {
        const p = c[probe];
        const cmd = p?.exec?.command ?? [];
        const verb = cmd.indexOf("health");
        const flags = Object.fromEntries(cmd.slice(1, Math.max(verb, 1)).map((a) => /^--([a-z_]+)=(.*)$/.exec(a)?.slice(1) ?? [a, null]));
        const ok = cmd[0] === "smigctl" && verb > 0 && cmd.length === verb + 2 && cmd[verb + 1] === `127.0.0.1:${port}` &&
          Object.entries(probeFlags).every(([k, v]) => flags[k] === v) && ownNames.includes(flags.server_name) &&
          Object.values(flags).every((v) => v !== null);
        if (!ok) {
          out.push(`${at}: ${probe} must be exec [smigctl, --ca=${probeFlags.ca}, --cert=${probeFlags.cert}, --key=${probeFlags.key}, ` +
            `--server_name=<its Service: ${ownNames[0] ?? "none"}>, --timeout=..., health, 127.0.0.1:${port}], got ${JSON.stringify(p?.exec?.command ?? p)}`);
          continue;
        }
        const deadline = Number(/^(\d+)s$/.exec(flags.timeout ?? "")?.[1]);
        if (!(deadline > 0 && (p.timeoutSeconds ?? 1) > deadline)) out.push(`${at}: ${probe}: timeoutSeconds (${p.timeoutSeconds ?? 1}) must exceed smigctl's --timeout (${flags.timeout}) and be set`);
      }
    }
  }
  // Where smig-tls comes from in the output itself: cert-manager's Certificate.
  for (const cert of byKind("Certificate").filter((x) => x.spec.secretName === "smig-tls")) {
    const at = describe(cert);
    const names = new Set(cert.spec.dnsNames ?? []);
    const missing = [...certNames].filter((n) => !names.has(n));
    if (missing.length) out.push(`${at}: dnsNames lack ${missing.join(", ")}`);
    for (const u of ["server auth", "client auth"]) if (!cert.spec.usages?.includes(u)) out.push(`${at}: usages lack ${u}`);
    if (!cert.spec.duration || !cert.spec.renewBefore) out.push(`${at}: set duration and renewBefore`);
    const issuer = byKind("Issuer").find((i) => i.metadata.name === cert.spec.issuerRef?.name);
    const ca = issuer?.spec.ca && byKind("Certificate").find((x) => x.spec.secretName === issuer.spec.ca.secretName);
    if (!ca?.spec.isCA) out.push(`${at}: its Issuer must be a CA Issuer whose Secret an isCA Certificate makes`);
    else if (!byKind("Issuer").find((i) => i.metadata.name === ca.spec.issuerRef?.name)?.spec.selfSigned) {
      out.push(`${describe(ca)}: must be issued by a selfSigned Issuer`);
    }
  }
  return out;
}

// make-tls-secret's names: the same Services.
const makeTlsSecret = readFileSync(path.join(deployDir, "k8s/make-tls-secret"), "utf8");
const scriptServices = (/^services=\(([^)]*)\)/m.exec(makeTlsSecret)?.[1] ?? "").split(/\s+/).filter(Boolean).sort();

for (const k of kustomizations()) {
  const docs = await renderedDocs(renderDir, k.name);
  const where = `${k.name}`;
  const overlay = k.name !== "base";
  const byKind = (kind) => docs.filter((d) => d.kind === kind);
  const named = (kind, name) => byKind(kind).find((d) => d.metadata.name === name);

  for (const d of docs) {
    if (!["Namespace"].includes(d.kind)) f.expect(d.metadata.namespace === "smig", `${where}: ${describe(d)} is not in namespace smig`);
  }
  const workloads = [...byKind("Deployment"), ...byKind("DaemonSet")];
  const pods = new Map(workloads.map((w) => [w.metadata.name, checkWorkload(where, w, byKind, overlay)]));
  for (const name of components) f.expect(pods.has(name), `${where}: no workload ${name}`);
  for (const s of byKind("StatefulSet")) {
    if (f.expect(s.metadata.name === "smig-etcd", `${where}: ${describe(s)}: the only StatefulSet is smig-etcd`)) pods.set(s.metadata.name, checkEtcd(where, s, byKind));
  }
  for (const name of Object.keys(replicated)) {
    const d = named("Deployment", name);
    if (d) checkReplicated(where, d, byKind, overlay);
  }

  for (const p of tlsProblems(docs)) f.add(`${where}: ${p}`);
  f.expect(JSON.stringify(scriptServices) === JSON.stringify(grpcServices(docs)),
    `${where}: make-tls-secret's services=(${scriptServices.join(" ")}) must be the gRPC Services ${grpcServices(docs).join(" ")}`);
  const certs = byKind("Certificate").filter((c) => c.spec.secretName === "smig-tls");
  f.expect((k.name === "cert-manager") === (certs.length === 1), `${where}: a Certificate for smig-tls in overlay cert-manager, and only there`);

  // Services select their workload and name ports it has; the ServiceMonitor finds them.
  for (const s of byKind("Service")) {
    const target = [...pods.entries()].find(([, p]) => matches(s.spec.selector, p.podLabels));
    if (!f.expect(target, `${where}: ${describe(s)} selects no workload`)) continue;
    for (const p of s.spec.ports) {
      const tp = p.targetPort ?? p.port;
      const hit = target[1].ports.find((cp) => (typeof tp === "string" ? cp.name === tp : cp.containerPort === tp));
      f.expect(hit && (hit.protocol ?? "TCP") === (p.protocol ?? "TCP"), `${where}: ${describe(s)} port ${p.name}: no ${p.protocol ?? "TCP"} container port ${tp}`);
    }
  }
  const monitors = byKind("ServiceMonitor");
  for (const name of components) {
    const svc = named("Service", name);
    if (!f.expect(svc, `${where}: no Service ${name}`)) continue;
    const m = monitors.find((sm) => matches(sm.spec.selector?.matchLabels, svc.metadata.labels));
    f.expect(m && m.spec.endpoints.every((e) => svc.spec.ports.some((p) => p.name === e.port)),
      `${where}: no ServiceMonitor scrapes Service ${name} on a port it has`);
  }
  for (const d of byKind("Deployment")) {
    f.expect(byKind("PodDisruptionBudget").some((p) => matches(p.spec.selector?.matchLabels, d.spec.template.metadata.labels)),
      `${where}: no PodDisruptionBudget for ${describe(d)}`);
  }

  // The data plane: the edge nodes' own network, discovered through a headless Service.
  const ds = named("DaemonSet", "smig-dataplane");
  if (ds) {
    f.expect(ds.spec.template.spec.hostNetwork === true, `${where}: smig-dataplane needs hostNetwork (multi-homing)`);
    f.expect(ds.spec.template.spec.nodeSelector?.["smig.io/edge"] === "true", `${where}: smig-dataplane must select nodes labelled smig.io/edge=true`);
  }
  f.expect(named("Service", "smig-dataplane")?.spec.clusterIP === "None", `${where}: Service smig-dataplane must be headless`);

  // RBAC: the PMM may read EndpointSlices in its namespace, nothing more.
  f.expect(!byKind("ClusterRole").length && !byKind("ClusterRoleBinding").length, `${where}: no cluster-wide RBAC`);
  for (const r of byKind("Role")) {
    for (const rule of r.rules) {
      f.expect(JSON.stringify(rule.apiGroups) === '["discovery.k8s.io"]' && JSON.stringify(rule.resources) === '["endpointslices"]' &&
        rule.verbs.every((v) => ["get", "list", "watch"].includes(v)), `${where}: ${describe(r)} grants more than reading EndpointSlices`);
    }
  }
  for (const b of byKind("RoleBinding")) {
    f.expect(named("Role", b.roleRef.name), `${where}: ${describe(b)} binds a missing Role ${b.roleRef.name}`);
    f.expect(b.subjects.every((s) => s.kind === "ServiceAccount" && named("ServiceAccount", s.name)), `${where}: ${describe(b)} binds a missing ServiceAccount`);
  }

  // PMM discovery names the data plane's Service.
  const pmm = byKind("ConfigMap").find((c) => c.data?.["proximity.json"]);
  const service = pmm && JSON.parse(pmm.data["proximity.json"]).discovery?.kubernetes?.service;
  f.expect(service && named("Service", service)?.spec.clusterIP === "None", `${where}: proximity.json discovery.kubernetes.service must name the headless data plane Service`);

  // The MDM's changes reach the SMM leader: migrator_address names a headless Service of
  // the SMM pods (every replica's IP), which its client balances call by call.
  const mdm = byKind("ConfigMap").find((c) => c.data?.["decision.json"]);
  const smmAddress = mdm && JSON.parse(mdm.data["decision.json"]).migrator_address;
  const smmName = /^dns:\/\/\/([a-z0-9-]+):7300$/.exec(smmAddress ?? "")?.[1];
  const smmReplicas = smmName && named("Service", smmName);
  f.expect(smmReplicas?.spec.clusterIP === "None" && pods.has("smig-migrator") && matches(smmReplicas.spec.selector, pods.get("smig-migrator").podLabels),
    `${where}: decision.json migrator_address ${smmAddress} must be dns:///<headless Service of the SMM pods>:7300, so that changes reach the leader`);

  // The dashboard ConfigMap is the JSON file itself, labelled for the sidecar.
  const dash = byKind("ConfigMap").find((c) => c.metadata.labels?.grafana_dashboard === "1");
  f.expect(dash && dash.data?.["smig-migrations.json"] === dashboard, `${where}: no ConfigMap labelled grafana_dashboard=1 holding deploy/grafana/smig-migrations.json`);
  f.expect(byKind("PrometheusRule").length === 1, `${where}: want one PrometheusRule`);

  // What each overlay is for.
  const dpConfig = byKind("ConfigMap").find((c) => c.data?.["dataplane.json"]);
  const dpPorts = named("Service", "smig-dataplane")?.spec.ports ?? [];
  if (k.name === "base") {
    f.expect(!dpConfig, "base: the data plane config belongs to the overlays");
  } else if (f.expect(dpConfig, `${where}: no ConfigMap with dataplane.json`)) {
    const cfg = JSON.parse(dpConfig.data["dataplane.json"]);
    f.expect(cfg.grpc_address?.endsWith(":7400") && cfg.metrics_address?.endsWith(":9400"), `${where}: dataplane.json: agent on 7400, metrics on 9400`);
    if (["userland", "etcd", "cert-manager"].includes(k.name)) {
      f.expect(cfg.sctp_stack === "userland" && cfg.udp_encaps_port === 9899, `${where}: dataplane.json: sctp_stack userland, udp_encaps_port 9899`);
      f.expect(dpPorts.some((p) => p.protocol === "UDP" && p.port === 9899), `${where}: Service smig-dataplane: no UDP 9899`);
      f.expect(!dpPorts.some((p) => p.protocol === "SCTP"), `${where}: Service smig-dataplane: no SCTP port on userland`);
    } else if (k.name === "kernel-sctp") {
      f.expect(cfg.sctp_stack === "kernel" && !cfg.udp_encaps_port, `${where}: dataplane.json: sctp_stack kernel, no UDP encapsulation`);
      f.expect(dpPorts.some((p) => p.protocol === "SCTP" && p.port === cfg.sctp_port), `${where}: Service smig-dataplane: no SCTP port ${cfg.sctp_port}`);
      f.expect(/sctp/.test(JSON.stringify(ds?.metadata.annotations ?? {})), `${where}: smig-dataplane: no annotation about the sctp module`);
    } else {
      f.add(`${where}: an overlay this check does not know: add what it must say`);
    }
    f.expect(["etcd", "cert-manager"].includes(k.name) === Boolean(named("StatefulSet", "smig-etcd")), `${where}: etcd runs in the cluster in overlays etcd and cert-manager only`);
  }
}
// Planted mistakes: the TLS rules must catch each (else the checks above prove nothing).
{
  const docs = await renderedDocs(renderDir, "cert-manager");
  const bad = structuredClone(docs);
  const cm = (key) => bad.find((d) => d.kind === "ConfigMap" && d.data?.[key]);
  const edit = (key, fn) => { const c = cm(key); const cfg = JSON.parse(c.data[key]); fn(cfg); c.data[key] = JSON.stringify(cfg); };
  edit("proximity.json", (c) => delete c.tls);
  edit("migrator.json", (c) => delete c.client_tls.server_name);
  const dp = bad.find((d) => d.kind === "DaemonSet").spec.template.spec;
  dp.containers[0].readinessProbe = { grpc: { port: 7400 } };
  dp.containers[0].volumeMounts = dp.containers[0].volumeMounts.filter((m) => m.mountPath !== tlsDir);
  bad.find((d) => d.kind === "Certificate" && d.spec.secretName === "smig-tls").spec.usages = ["server auth"];
  const got = tlsProblems(bad);
  for (const want of ["proximity.json: serves plaintext gRPC", "migrator.json: client_tls.server_name", "container dataplane: readinessProbe must be exec",
    "container dataplane: must mount Secret smig-tls", "usages lack client auth"]) {
    f.expect(got.some((p) => p.includes(want)), `planted mistake not reported: "${want}" (reported: ${JSON.stringify(got)})`);
  }
}
f.finish(`${kustomizations().map((k) => k.name).join(", ")}: security, probes, mutual TLS, references, RBAC, monitoring, overlays; planted TLS mistakes caught`);
