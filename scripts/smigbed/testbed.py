"""smigbed.testbed: a whole smig edge on one machine, for the demo and the system tests.

Network namespaces joined by veth links, each with its own processes:

    veh   the car: radios `cell` (10.101.0.2) and `dsrc` (10.102.0.2), smig-dataplane
          (vehicle), a UDP recorder standing in for the player's socket, and an ffmpeg
          decoder fed by the recorder
    e<i>  edge i: NICs `cell` (10.101.i.1) and `dsrc` (10.102.i.1), smig-dataplane (edge),
          smig-linkemu shaping both of its links (delay, loss, rate, up/down; both ways)
    air   the bridges br-cell and br-dsrc that join every radio to every edge, a management
          bridge (10.199.0.0/24) for /metrics, etcd (127.0.0.1 in this namespace), the PMM,
          two MDM replicas (mdm-0, mdm-1) and two SMM replicas (smm-0, smm-1), all on etcd:
          one of each leads, the other stands by

gRPC goes over unix sockets in a run directory under /tmp (reachable from every namespace
and from the caller); /metrics over the management bridge. With tls=True every gRPC server
and client speaks mutual TLS over those sockets, with a CA made on the spot (run/tls/). Only namespaces this module created are
touched, and Bed.stop() deletes them.

    bed = Bed(out_dir, stack="userland", edges=3)
    bed.start(media_seconds=60, policy={...})
    bed.set_link("edge-2", "dsrc", up=True, delay_ms=2)
    bed.smigctl("migrations")          # to every replica's address: changes reach the leader
    bed.leader("migrator")             # "smm-0" or "smm-1"
    bed.kill("smm-0"); bed.restart("smm-0")   # it comes back as a standby
    bed.stop()

What the bed recorded is judged by smigbed.analysis.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # holds this package
ROOT = os.path.dirname(SCRIPTS)
# The build whose binaries run: SMIG_BUILD_DIR (ctest sets it: build-asan/ for preset asan), else build/.
BUILD = os.environ.get("SMIG_BUILD_DIR") or os.path.join(ROOT, "build")
BIN = {
    "dataplane": f"{BUILD}/dataplane/daemon/smig-dataplane",
    "proximity": f"{BUILD}/services/proximity/smig-proximity",
    "decision": f"{BUILD}/services/decision/smig-decision",
    "migrator": f"{BUILD}/services/migrator/smig-migrator",
    "smigctl": f"{BUILD}/tools/smigctl/smigctl",
    "linkemu": f"{BUILD}/tools/linkemu/smig-linkemu",
}
ETCD = "/usr/bin/etcd"
ETCD_CLIENT = "127.0.0.1:2379"  # inside the bed's own "air" namespace: free by construction
ETCD_PEER = "127.0.0.1:2380"
# The replicated services: (service, replica names). Each replica has its own socket
# (sock(name)), metrics port and log; clients get every replica's address.
REPLICAS = {"migrator": ("smm-0", "smm-1"), "decision": ("mdm-0", "mdm-1")}
RADIOS = ("cell", "dsrc")
SUBNET = {"cell": "10.101", "dsrc": "10.102"}
VEHICLE_PORT = 6000
PROBE_PORT = 7900
PLAYER_PORT = 5004   # where the vehicle delivers flow 0 (the recorder)
DECODER_PORT = 5006  # where the recorder forwards it (ffmpeg)
# ffmpeg ends this long after its input stops (it then flushes the stream's last frames,
# which a signal would lose), and gives up if nothing arrives for as long at the start.
# In the emulated VM a session takes more than 5 s to come up under load.
DECODER_IDLE_S = 30 if os.environ.get("SMIG_EMULATED_CPU") else 5
# How long a process may take to come up (listen, print its ready line): ffmpeg took over
# 20 s to bind in the emulated VM on a loaded host.
STARTUP_S = 90 if os.environ.get("SMIG_EMULATED_CPU") else 20
MGMT = "10.199.0"
SESSION = 1
VEHICLE_ID = "car-1"


def sh(*cmd, check=True):
    """Runs a command; returns its stdout. Raises with its stderr if it fails."""
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.returncode}")
    return r.stdout


def make_media(path, seconds):
    """An MPEG-TS test stream of about 2 Mbit/s (cached by name)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        sh("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           "testsrc2=size=320x240:rate=25", "-t", str(seconds), "-c:v", "mpeg2video",
           "-b:v", "1500k", "-f", "mpegts", "-muxrate", "2000k", path + ".tmp")
        os.rename(path + ".tmp", path)
    return path


class Bed:
    def __init__(self, out_dir, stack="userland", edges=3, log=print, failover=None,
                 linkemu_seed=None, tls=False):
        self.out = os.path.abspath(out_dir)
        # Unix sockets and configs live on a local file system (the output directory may be
        # a VM's 9p share, where sockets cannot be bound).
        self.run = tempfile.mkdtemp(prefix="smig-run-")
        self.logs = os.path.join(self.out, "logs")
        self.stack = stack
        self.edges = [f"edge-{i}" for i in range(1, edges + 1)]
        self.log = log
        self.failover = failover  # a FailoverProfile as JSON; None: the data plane's default
        self.linkemu_seed = linkemu_seed  # smig-linkemu's --seed (loss, jitter); None: the clock
        self.tls = tls  # mutual TLS on every gRPC hop (make_pki)
        self.pki = None
        tag = f"smig{os.getpid() % 100000}"
        self.ns = {"air": f"{tag}air", "veh": f"{tag}veh"}
        for i, e in enumerate(self.edges, 1):
            self.ns[e] = f"{tag}e{i}"
        self.procs = {}
        self._argv = {}  # name -> argv, for restart()
        self._log_start = {}  # name -> where its latest run's stdout begins in its log
        self.etcd_dir = None
        self.t0 = None
        self.media = None
        self._created = []

    # ---------------------------------------------------------------- network
    def _netns(self, name, *cmd):
        return sh("ip", "-n", self.ns[name], *cmd)

    def _veth(self, a_ns, a_if, b_ns, b_if):
        sh("ip", "link", "add", a_if, "netns", self.ns[a_ns], "type", "veth", "peer", "name",
           b_if, "netns", self.ns[b_ns])

    def build_network(self):
        for key, name in self.ns.items():
            sh("ip", "netns", "add", name)
            self._created.append(name)
            self._netns(key, "link", "set", "lo", "up")
        for br in ("br-cell", "br-dsrc", "br-mgmt"):
            self._netns("air", "link", "add", br, "type", "bridge")
            self._netns("air", "link", "set", br, "up")
        self._netns("air", "addr", "add", f"{MGMT}.1/24", "dev", "br-mgmt")
        nodes = [("veh", "v", f"{SUBNET['cell']}.0.2", f"{SUBNET['dsrc']}.0.2", f"{MGMT}.2")]
        for i, e in enumerate(self.edges, 1):
            nodes.append((e, f"e{i}", f"{SUBNET['cell']}.{i}.1", f"{SUBNET['dsrc']}.{i}.1",
                          f"{MGMT}.{10 + i}"))
        for key, short, cell, dsrc, mgmt in nodes:
            for radio, addr in (("cell", cell), ("dsrc", dsrc), ("mgmt", mgmt)):
                peer = f"{short}-{radio}"
                self._veth(key, radio, "air", peer)
                self._netns("air", "link", "set", peer, "master", f"br-{radio}")
                self._netns("air", "link", "set", peer, "up")
                mask = 24 if radio == "mgmt" else 16
                self._netns(key, "addr", "add", f"{addr}/{mask}", "dev", radio)
                self._netns(key, "link", "set", radio, "up")

    def edge_addresses(self, edge):
        i = self.edges.index(edge) + 1
        return [f"{SUBNET['cell']}.{i}.1", f"{SUBNET['dsrc']}.{i}.1"]

    def metrics_address(self, node):
        port = {"proximity": 9100, "mdm-0": 9200, "mdm-1": 9201, "smm-0": 9300,
                "smm-1": 9301}.get(node)
        if port:
            return f"{MGMT}.1:{port}"
        if node == "vehicle":
            return f"{MGMT}.2:9400"
        return f"{MGMT}.{10 + self.edges.index(node) + 1}:9400"

    # ---------------------------------------------------------------- processes
    def _spawn(self, name, ns_key, argv, stdin=None, env=None, append=False):
        """`append`: a restart, whose output goes on after the earlier run's."""
        mode = "a" if append else "w"
        log = os.path.join(self.logs, f"{name}.log")
        self._log_start[name] = os.path.getsize(log) if append and os.path.exists(log) else 0
        out = open(log, mode)
        err = open(os.path.join(self.logs, f"{name}.err"), mode)
        self._argv[name] = argv
        cmd = ["ip", "netns", "exec", self.ns[ns_key], *argv]
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=stdin or subprocess.DEVNULL, env=env)
        self.procs[name] = p
        return p

    def _await_line(self, name, needle, timeout=STARTUP_S):
        path = os.path.join(self.logs, f"{name}.log")
        skip = self._log_start.get(name, 0)  # a restart: its own lines only
        end = time.time() + timeout
        while time.time() < end:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited ({self.procs[name].returncode}): "
                                   f"{open(path[:-4] + '.err').read()[-2000:]}")
            with open(path) as f:
                if needle in f.read()[skip:]:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not start within {timeout} s")

    def _await_udp(self, ns_key, port, timeout=STARTUP_S):
        end = time.time() + timeout
        while time.time() < end:
            if sh("ip", "netns", "exec", self.ns[ns_key], "ss", "-Hlun", f"sport = :{port}").strip():
                return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on UDP port {port} in {self.ns[ns_key]}")

    def _config(self, name, config):
        path = os.path.join(self.run, f"{name}.json")
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
        return path

    # ---------------------------------------------------------------- TLS
    def make_pki(self):
        """A CA and one certificate (DNS:localhost: the authority of a unix socket) that every
        server and client of the bed presents, both usages; files in run/tls/."""
        d = os.path.join(self.run, "tls")
        os.makedirs(d, exist_ok=True)
        ext = os.path.join(d, "node.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n")
        for argv in (
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=smigbed CA", "-keyout", "ca.key", "-out", "ca.pem"],
                ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=smigbed node",
                 "-keyout", "node.key", "-out", "node.csr"],
                ["x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", "node.pem"]):
            r = subprocess.run(["openssl", *argv], cwd=d, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"openssl {argv[0]}: {r.stderr.strip()}")
        self.pki = {n: os.path.join(d, n) for n in ("ca.pem", "node.pem", "node.key")}

    def _with_tls(self, conf, client=False, server=True):
        """`conf` with the bed's server `tls` and (client) `client_tls`, when tls is on."""
        if not self.tls:
            return conf
        if server:
            conf["tls"] = {"cert_file": self.pki["node.pem"], "key_file": self.pki["node.key"],
                           "client_ca_file": self.pki["ca.pem"]}
        if client:
            conf["client_tls"] = self.client_tls()
        return conf

    def client_tls(self):
        return {"ca_file": self.pki["ca.pem"], "cert_file": self.pki["node.pem"],
                "key_file": self.pki["node.key"]}

    def tls_enforced(self):
        """With tls on: for the PMM, each SMM and MDM replica, each edge and the vehicle,
        whether smigctl's health check is answered SERVING with the bed's client
        certificate and refused without TLS."""
        def health(name, *flags):
            return subprocess.run([BIN["smigctl"], "health", self.sock(name), "--timeout=2s",
                                   *flags], capture_output=True, text=True).returncode
        return {name: health(name, *self.tls_flags()) == 0 and health(name) != 0
                for name in ("proximity", *REPLICAS["migrator"], *REPLICAS["decision"],
                             *self.edges, "vehicle")}

    def tls_flags(self):
        """smigctl's flags for the bed's TLS (none without it)."""
        if not self.tls:
            return []
        return [f"--ca={self.pki['ca.pem']}", f"--cert={self.pki['node.pem']}",
                f"--key={self.pki['node.key']}"]

    def sock(self, name):
        """A node's gRPC address. "migrator" and "decision" are every replica's, comma-separated
        (what smigctl's --smm/--mdm and the MDM's migrator_address take)."""
        if name in REPLICAS:
            return ",".join(self.sock(r) for r in REPLICAS[name])
        return f"unix:{self.run}/{name}.sock"

    # ---------------------------------------------------------------- etcd and replicas
    def _start_etcd(self):
        if not os.access(ETCD, os.X_OK):
            raise RuntimeError(f"{ETCD} is missing: run scripts/install-deps (it installs "
                               "etcd-server), the demo's control plane keeps its state there")
        self.etcd_dir = os.path.join(self.run, "etcd")
        client, peer = f"http://{ETCD_CLIENT}", f"http://{ETCD_PEER}"
        self._spawn("etcd", "air", [
            ETCD, "--name=smigbed", f"--data-dir={self.etcd_dir}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=smigbed={peer}", "--initial-cluster-state=new",
            # A 1 s lease needs etcd's minimum TTL (1.5 x election timeout) <= 1 s.
            "--heartbeat-interval=50", "--election-timeout=500", "--logger=zap",
            "--log-level=warn"])
        self._await_etcd()

    def _await_etcd(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.procs["etcd"].poll() is not None:
                raise RuntimeError(f"etcd exited ({self.procs['etcd'].returncode}): "
                                   f"{open(os.path.join(self.logs, 'etcd.err')).read()[-2000:]}")
            r = subprocess.run(["ip", "netns", "exec", self.ns["air"], "etcdctl",
                                f"--endpoints={ETCD_CLIENT}", "--command-timeout=1s",
                                "endpoint", "health"], capture_output=True, text=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"etcd did not become healthy within {timeout} s")

    def _store(self, replica):
        return {"endpoints": [ETCD_CLIENT], "replica_id": replica}

    def _start_replica(self, name):
        """Starts (or restarts) one SMM or MDM replica from its config; waits for its ready line."""
        service = "migrator" if name.startswith("smm") else "decision"
        self._spawn(name, "air", [BIN[service], "--config=" + os.path.join(self.run, f"{name}.json")],
                    append=name in self._argv)
        self._await_line(name, "grpc_port")

    def restart(self, name):
        """Starts a killed node again with its argv: etcd on its data directory, a replica
        (which comes back as a standby), the PMM (which starts empty and learns the vehicles
        again from their reports)."""
        if name == "etcd":
            self._spawn("etcd", "air", self._argv["etcd"], append=True)
            self._await_etcd()
        elif name.startswith(("smm-", "mdm-")):
            self._start_replica(name)
        elif name == "proximity":
            self._spawn("proximity", "air", self._argv["proximity"], append=True)
            self._await_line("proximity", "grpc_port")
        else:
            raise ValueError(f"restart({name}): only etcd, the replicas and the PMM")

    def leader(self, service, timeout=10):
        """The replica of `service` ("migrator" or "decision") that leads now, by its
        smig_leader gauge; None if none does within `timeout` s."""
        end = time.time() + timeout
        while True:
            for r in REPLICAS[service]:
                p = self.procs.get(r)
                if p is None or p.poll() is not None:
                    continue
                m = self.scrape(r, timeout_s=1)
                if m.get(f'smig_leader{{service="{service}"}}') == 1:
                    return r
            if time.time() >= end:
                return None
            time.sleep(0.1)

    def _start_edge(self, edge):
        i = self.edges.index(edge) + 1
        links = "; ".join(f"{r} dev {r}" for r in RADIOS)
        self._spawn(f"linkemu-{edge}", edge,
                    [BIN["linkemu"], "--links", links, "--control", f"{self.run}/linkemu-{edge}.sock",
                     "--replace", "--realtime",
                     *([f"--seed={self.linkemu_seed}"] if self.linkemu_seed else [])])
        self._await_line(f"linkemu-{edge}", '"ready"')
        conf = self._with_tls({
            "role": "ROLE_EDGE", "server_id": edge, "local_addresses": self.edge_addresses(edge),
            "sctp_stack": self.stack, "probe_port": PROBE_PORT, "grpc_address": self.sock(edge),
            "metrics_address": self.metrics_address(edge), "max_sessions": 16})
        if self.stack == "userland":
            conf["udp_encaps_port"] = 9899
        if self.failover:
            conf["failover"] = self.failover
        self._spawn(edge, edge, [BIN["dataplane"], f"--config={self._config(edge, conf)}"])
        self._await_line(edge, "grpc_port")
        del i

    def start(self, media_seconds=60, policy=None, report_interval="0.5s", overlap_timeout="10s",
              capacities=None):
        """Network, link emulation, data planes, services, the player; opens the session.
        `capacities`: {edge: sessions it may serve} for the PMM's server list (default 16)."""
        for d in (self.out, self.run, self.logs):
            os.makedirs(d, exist_ok=True)
        media_dir = os.environ.get("SMIG_MEDIA_DIR") or os.path.join(BUILD, "media")
        os.makedirs(media_dir, exist_ok=True)
        self.media = make_media(os.path.join(media_dir, f"testsrc2-{media_seconds}s.ts"), media_seconds)
        if self.tls:
            self.make_pki()
        self.build_network()

        servers = [{"id": e, "agent_address": self.sock(e), "sctp_addresses": self.edge_addresses(e),
                    "sctp_port": PROBE_PORT, "capacity": (capacities or {}).get(e, 16)}
                   for e in self.edges]
        self._spawn("proximity", "air", [BIN["proximity"], "--config=" + self._config("proximity", self._with_tls({
            "grpc_address": self.sock("proximity"), "metrics_address": self.metrics_address("proximity"),
            "servers": servers, "report_ttl": "3s"}))])
        self._start_etcd()
        for r in REPLICAS["migrator"]:
            self._config(r, self._with_tls({
                "grpc_address": self.sock(r), "metrics_address": self.metrics_address(r),
                "proximity_address": self.sock("proximity"), "overlap_timeout": overlap_timeout,
                "store": self._store(r)}, client=True))
        for r in REPLICAS["decision"]:
            self._config(r, self._with_tls({
                "grpc_address": self.sock(r), "metrics_address": self.metrics_address(r),
                "proximity_address": self.sock("proximity"),
                "migrator_address": self.sock("migrator"),
                "policy": policy or {"mode": "MODE_MANUAL"}, "store": self._store(r)}, client=True))
        self._await_line("proximity", "grpc_port")
        for r in (*REPLICAS["migrator"], *REPLICAS["decision"]):
            self._start_replica(r)
        for service in REPLICAS:
            if self.leader(service, timeout=15) is None:
                raise RuntimeError(f"no {service} replica leads 15 s after start (etcd at "
                                   f"{ETCD_CLIENT} in {self.ns['air']}; see {self.logs})")
        for e in self.edges:
            self._start_edge(e)

        # The player side: recorder -> decoder, then the vehicle that feeds them.
        self._spawn("decoder", "veh", [
            "ffmpeg", "-nostdin", "-loglevel", "level+debug", "-i",
            f"udp://127.0.0.1:{DECODER_PORT}?timeout={DECODER_IDLE_S * 1000000}&fifo_size=1000000"
            "&overrun_nonfatal=1",
            "-f", "null", "-"])
        self._await_udp("veh", DECODER_PORT)  # ffmpeg binds late: nothing may go before
        # The recorder is the measuring instrument: real-time priority, so that the demo's
        # own load (smigctl polls, ffmpeg) does not show up as gaps in what it records.
        # It is this package's module: run with this package on its path, whatever the
        # caller's environment.
        pythonpath = os.pathsep.join(p for p in (SCRIPTS, os.environ.get("PYTHONPATH")) if p)
        self._spawn("recorder", "veh", [
            "chrt", "-f", "40", "/usr/bin/python3", "-m", "smigbed.udp_recorder",
            str(PLAYER_PORT), str(DECODER_PORT), os.path.join(self.out, "played.ts"),
            os.path.join(self.out, "arrivals.txt")], env=dict(os.environ, PYTHONPATH=pythonpath))
        self._await_line("recorder", "ready")
        radios = [f"{SUBNET['dsrc']}.0.2", f"{SUBNET['cell']}.0.2"]  # dsrc first: the primary
        vconf = {"role": "ROLE_VEHICLE", "local_addresses": radios, "sctp_port": VEHICLE_PORT,
                 "sctp_stack": self.stack, "grpc_address": self.sock("vehicle"),
                 "metrics_address": self.metrics_address("vehicle"),
                 "sinks": {"0": {"udp": f"127.0.0.1:{PLAYER_PORT}"}},
                 "proximity": {"pmm_address": self.sock("proximity"), "vehicle_id": VEHICLE_ID,
                               "interval": report_interval}}
        if self.stack == "userland":
            vconf["udp_encaps_port"] = 9899
        if self.failover:
            vconf["failover"] = self.failover
        if self.tls:
            self._with_tls(vconf)
            vconf["proximity"]["client_tls"] = self.client_tls()
        self._spawn("vehicle", "veh", [BIN["dataplane"], f"--config={self._config('vehicle', vconf)}"])
        self._await_line("vehicle", "grpc_port")
        self.radios = radios

    def open_session(self, edge, redundancy=None):
        """Starts the media session on `edge` through the SMM; the clock starts now.
        `redundancy`: "off", "auto" or "always" (None: the SMM's default, auto)."""
        req = {"session_id": str(SESSION), "vehicle_id": VEHICLE_ID, "server_id": edge,
               "vehicle_addresses": self.radios, "vehicle_port": VEHICLE_PORT,
               "flows": [{"flow_id": 0, "source": {"file": self.media}}]}
        if redundancy is not None:
            req["redundancy"] = "REDUNDANCY_POLICY_" + redundancy.upper()
        self.t0 = time.time()
        # The SMM mints the session's key; smigctl hands it to the vehicle (docs/protocol.md).
        return self.smigctl("session", "create", "--json=" + json.dumps(req),
                            "--vehicle-agent=" + self.sock("vehicle"))

    # ---------------------------------------------------------------- control
    def smigctl(self, *args, check=True):
        """smigctl with JSON output against this bed's services; the parsed JSON lines."""
        r = subprocess.run([BIN["smigctl"], *args, "--output=json", f"--pmm={self.sock('proximity')}",
                            f"--mdm={self.sock('decision')}", f"--smm={self.sock('migrator')}",
                            *self.tls_flags()],
                           capture_output=True, text=True)
        if check and r.returncode not in (0, 1):
            raise RuntimeError(f"smigctl {' '.join(args)}: {r.stderr.strip()}")
        out = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        return out[0] if len(out) == 1 else out

    def _linkemu(self, edge, command):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(f"{self.run}/linkemu-{edge}.sock")
            s.sendall((command + "\n").encode())
            answer = b""
            while not (answer.endswith(b"ok\n") or b"error" in answer):
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        text = answer.decode()
        if not text.endswith("ok\n"):
            raise RuntimeError(f"linkemu {edge}: {command}: {text.strip()}")
        return [json.loads(l) for l in text.splitlines() if l.startswith("{")]

    def set_link(self, edge, radio, up=None, delay_ms=None, loss_pct=None, rate_mbit=None):
        """Changes the (radio, edge) link; the delay is one way, in each direction."""
        cmd = f"link {radio}"
        if delay_ms is not None:
            cmd += f" delay {delay_ms}ms"
        if loss_pct is not None:
            cmd += f" loss {loss_pct}%"
        if rate_mbit is not None:
            cmd += f" rate {rate_mbit}mbit" if rate_mbit else " rate 0"
        if up is not None:
            cmd += " up" if up else " down"
        self._linkemu(edge, cmd)

    def link_stats(self, edge):
        return self._linkemu(edge, "stats")

    def scrape(self, node, timeout_s=2):
        """The node's /metrics as {series: value} (fetched from inside the air namespace);
        {} when it does not answer in time."""
        r = subprocess.run(["ip", "netns", "exec", self.ns["air"], "curl", "-s", "--max-time",
                            str(timeout_s),
                            f"http://{self.metrics_address(node)}/metrics"],
                           capture_output=True, text=True)
        out = {}
        for line in r.stdout.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def kill(self, name, sig=signal.SIGKILL):
        """Signals a node and waits for it. The process is `ip netns exec`, which execs
        the node's binary: its pid is the node's."""
        self.procs[name].send_signal(sig)
        self.procs[name].wait(timeout=10)

    def pid(self, name):
        return self.procs[name].pid

    def delivered_bytes(self):
        try:
            return os.path.getsize(os.path.join(self.out, "played.ts"))
        except OSError:
            return 0

    def wait_delivered(self, timeout):
        """Waits until the player has the whole stream (or `timeout` s)."""
        want = os.path.getsize(self.media)
        end = time.time() + timeout
        while time.time() < end and self.delivered_bytes() < want:
            time.sleep(0.2)
        return self.delivered_bytes() >= want

    # ---------------------------------------------------------------- end
    def stop(self):
        """Stops everything (data planes gracefully), removes the namespaces."""
        order = ["vehicle", *self.edges, *REPLICAS["decision"], *REPLICAS["migrator"],
                 "proximity", "recorder"]
        for name in order:
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name in order:
            p = self.procs.get(name)
            if p:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        dec = self.procs.get("decoder")
        if dec:
            try:
                dec.wait(timeout=DECODER_IDLE_S + 10)  # ends DECODER_IDLE_S after its input stops
            except subprocess.TimeoutExpired:
                dec.kill()
        for name, p in self.procs.items():
            if name.startswith("linkemu") and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        # etcd last: the replicas resign (and the SMM leader rolls back) through it.
        p = self.procs.get("etcd")
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.etcd_dir:
            shutil.rmtree(self.etcd_dir, ignore_errors=True)
        for name in self._created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self._created = []
        shutil.rmtree(self.run, ignore_errors=True)

    def exit_codes(self):
        """Each node's exit code. etcd re-raises the SIGTERM it stopped on (-15): clean."""
        codes = {n: p.returncode for n, p in self.procs.items()}
        if codes.get("etcd") == -signal.SIGTERM:
            codes["etcd"] = 0
        return codes

