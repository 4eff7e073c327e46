"""The player's socket, recorded: receives the vehicle's UDP egress on 127.0.0.1:PORT,
forwards every datagram to 127.0.0.1:FORWARD (a real decoder), and keeps the bytes and
each datagram's arrival time (unix seconds and size, one per line): an independent view of
what the player got, for loss, duplicates and stalls. Arrival times are the kernel's
(SO_TIMESTAMPNS): when the datagram reached the player's socket, however late this
process runs.

Order. On loopback the kernel stamps a datagram when the sender hands it over
(net.core.netdev_tstamp_prequeue=1), then queues it on the sending CPU's backlog. A
sender that moves to another CPU between two sends can have them delivered out of order
(seen in the project's VM, scripts/vm, under software emulation: a datagram read two places late,
though its stamp was the earliest). The recorder therefore holds each datagram HOLD_S,
then writes and forwards datagrams in stamp order, which is the vehicle's send order. It
counts what the loopback reordered ("reordered N" on stdout at exit), so that the OS's
reordering is neither charged to smig nor hidden.

    python3 -m smigbed.udp_recorder PORT FORWARD PLAYED.ts ARRIVALS.txt     (stops on SIGTERM)
"""
import bisect
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS is the same


# How long a datagram is held before it is written and forwarded, so that one the loopback
# handed over late still goes in its place (see the module docstring).
HOLD_S = 0.05


def kernel_time(ancillary):
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            sec, nsec = struct.unpack("qq", value[:16])
            return sec + nsec / 1e9
    return time.time()


def main():
    port, forward, played_path, arrivals_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Root may exceed net.core.rmem_max (SO_RCVBUFFORCE = 33): a burst after a stall on a
    # slow (emulated) CPU must not overflow the player's socket.
    try:
        rx.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    except OSError:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    rx.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    rx.bind(("127.0.0.1", port))
    rx.settimeout(HOLD_S)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    held = []  # (kernel time, arrival index, data), in kernel-time order
    arrived = 0
    reordered = 0
    with open(played_path, "wb") as played, open(arrivals_path, "w") as arrivals:
        def release(upto):
            while held and held[0][0] <= upto:
                t, _, data = held.pop(0)
                tx.sendto(data, ("127.0.0.1", forward))
                played.write(data)
                arrivals.write(f"{t:.6f} {len(data)}\n")
            played.flush()

        print("ready", flush=True)
        while not stop:
            try:
                data, ancillary, _, _ = rx.recvmsg(65536, socket.CMSG_SPACE(16))
            except socket.timeout:
                release(time.time() - HOLD_S)
                continue
            t = kernel_time(ancillary)
            entry = (t, arrived, data)
            arrived += 1
            if held and t < held[-1][0]:
                reordered += 1
                bisect.insort(held, entry)
            else:
                held.append(entry)
            release(t - HOLD_S)
        release(float("inf"))
    print(f"reordered {reordered}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
