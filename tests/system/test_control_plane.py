"""The control plane end to end, in namespaces (smigbed.testbed): PMM, MDM and SMM,
two edge data planes and a vehicle, a real stream to a real decoder.

- manual: a client with no compiled stubs (tests/reflection, like grpcurl) lists the
  services, describes the SMM, calls Migrate with JSON and follows WatchMigration to DONE;
- automatic: the vehicle's links to edge-2 really become faster (smig-linkemu delays
  packets less); the RTT the PMM sees comes from SCTP; exactly one migration follows,
  after the dwell time;
- rollback: the target data plane is killed during OVERLAPPING; the migration ends
  ROLLED_BACK with a reason and the source keeps serving.
Every case checks that the player got the stream byte for byte.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest

from smigbed.analysis import analyse, migrations_from_smm
from smigbed.testbed import VEHICLE_ID, Bed

HERE = os.path.dirname(os.path.abspath(__file__))
GRPCURL = os.path.join(HERE, "..", "reflection", "run.sh")
DWELL_S = 3


def grpcurl(*args, timeout=60):
    r = subprocess.run([GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


class ControlPlaneTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root for network namespaces")
        self.out = tempfile.mkdtemp(prefix=f"smig-{self._testMethodName}-")
        self.bed = Bed(self.out, stack=os.environ.get("SMIG_TEST_STACK", "userland"), edges=2)

    def tearDown(self):
        if hasattr(self, "bed"):
            self.bed.stop()

    def start(self, mode, media_seconds=16):
        self.bed.start(media_seconds=media_seconds, policy={
            "latency_weight": 1, "bandwidth_weight": 0, "load_weight": 0.1, "margin": 0.3,
            "dwell": f"{DWELL_S}s", "max_load": 0.9, "mode": mode})
        for e in self.bed.edges:
            self.bed.set_link(e, "cell", up=True, delay_ms=20)
            self.bed.set_link(e, "dsrc", up=e == "edge-1", delay_ms=2)

    def finish(self):
        """Waits for the whole stream, stops, and checks the player lost nothing."""
        self.assertTrue(self.bed.wait_delivered(timeout=40), "the player never got the whole stream")
        migrations = migrations_from_smm(self.bed)
        self.bed.stop()
        s = analyse(self.bed, migrations, failovers=0)
        print(json.dumps({k: v for k, v in s.items() if k != "migrations"}), flush=True)
        self.assertEqual(s["bytes_lost"], 0)
        self.assertEqual(s["duplicates_delivered"], 0)
        self.assertEqual(s["bytes_delivered"], s["bytes_sent"])
        self.assertEqual(s["cc_errors"], 0)
        self.assertEqual(s["frames_decoded"], s["frames_sent"])
        return migrations

    def test_manual_migration_through_reflection(self):
        self.start("MODE_MANUAL")
        self.bed.open_session("edge-1")
        smm = self.bed.sock(self.bed.leader("migrator"))  # the leader takes Migrate
        code, out, err = grpcurl(smm, "list")
        self.assertEqual(code, 0, err)
        for svc in ("smig.migrator.v1.Migrator", "grpc.health.v1.Health",
                    "grpc.reflection.v1alpha.ServerReflection"):
            self.assertIn(svc, out.split())
        code, out, err = grpcurl(smm, "describe", "smig.migrator.v1.Migrator")
        self.assertEqual(code, 0, err)
        self.assertIn("WatchMigration", out)
        code, out, err = grpcurl("-d", '{"service":""}', smm, "grpc.health.v1.Health/Check")
        self.assertEqual(code, 0, err)
        self.assertIn("SERVING", out)
        time.sleep(3)
        code, out, err = grpcurl("-d", json.dumps({"session_id": "1", "target_server_id": "edge-2",
                                                   "reason": "by hand", "request_id": "manual-1"}),
                                 smm, "smig.migrator.v1.Migrator/Migrate")
        self.assertEqual(code, 0, err)
        migration = json.loads(out.splitlines()[0])
        code, out, err = grpcurl("-max-time", "30", "-d", json.dumps({"migration_id": migration["id"]}),
                                 smm, "smig.migrator.v1.Migrator/WatchMigration")
        self.assertEqual(code, 0, err)
        updates = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        print("phases seen:", [u["phase"] for u in updates], flush=True)
        self.assertEqual(updates[-1]["phase"], "PHASE_DONE", updates[-1].get("rollback_reason"))
        # Errors name the offending value through reflection as well.
        code, out, err = grpcurl("-d", '{"session_id":"1","target_server_id":"edge-2"}', smm,
                                 "smig.migrator.v1.Migrator/Migrate")
        self.assertEqual(code, 1)
        self.assertIn("InvalidArgument", err)
        self.assertIn("edge-2", err)
        migrations = self.finish()
        self.assertEqual([(m["from"], m["to"], m["result"]) for m in migrations],
                         [("edge-1", "edge-2", "done")])

    def test_automatic_migration_follows_real_rtt_after_the_dwell(self):
        self.start("MODE_AUTOMATIC", media_seconds=20)
        self.bed.open_session("edge-1")
        time.sleep(4)
        self.assertEqual(migrations_from_smm(self.bed), [], "migrated while edge-1 was nearest")
        changed = time.time()
        # The car moves: edge-1's dsrc fades out, edge-2's comes in (packets really delayed less).
        self.bed.set_link("edge-1", "dsrc", up=False)
        self.bed.set_link("edge-2", "dsrc", up=True, delay_ms=2)
        p = self.bed.smigctl("proximity", VEHICLE_ID)
        print("proximity right after the change:", json.dumps(p), flush=True)
        migrations = self.finish()
        self.assertEqual(len(migrations), 1, migrations)
        m = migrations[0]
        self.assertEqual((m["from"], m["to"], m["trigger"], m["result"]), ("edge-1", "edge-2", "auto", "done"))
        self.assertGreaterEqual(m["started_unix"], changed + DWELL_S)
        print(f"migrated {m['started_unix'] - changed:.1f} s after the links changed", flush=True)

    def test_killing_the_target_during_the_overlap_rolls_back(self):
        self.start("MODE_MANUAL")
        # edge-2 cannot reach the car at all: its association never comes up, so the
        # migration stays in OVERLAPPING until we kill edge-2.
        self.bed.set_link("edge-2", "cell", up=False)
        self.bed.set_link("edge-2", "dsrc", up=False)
        self.bed.open_session("edge-1")
        time.sleep(2)
        m = self.bed.smigctl("migrate", "1", "--to=edge-2", "--reason=rollback test")
        for _ in range(100):
            if self.bed.smigctl("migration", m["id"])["phase"] == "PHASE_OVERLAPPING":
                break
            time.sleep(0.05)
        self.bed.kill("edge-2")
        end = time.time() + 15
        while time.time() < end:
            m = self.bed.smigctl("migration", m["id"])
            if m["phase"] in ("PHASE_DONE", "PHASE_ROLLED_BACK"):
                break
            time.sleep(0.1)
        print("rolled back:", m.get("rollback_reason"), flush=True)
        self.assertEqual(m["phase"], "PHASE_ROLLED_BACK")
        self.assertIn("edge-2", m["rollback_reason"])
        sessions = self.bed.smigctl("sessions")["sessions"]
        self.assertEqual(sessions[0]["server_id"], "edge-1")
        self.bed.procs.pop("edge-2")  # killed on purpose: not part of the clean-exit check
        self.finish()


if __name__ == "__main__":
    unittest.main(verbosity=2)
