"""The player's socket, recorded: receives the vehicle's UDP egress on 127.0.0.1:PORT,
forwards every datagram to 127.0.0.1:FORWARD (a real decoder), and keeps the bytes and
each datagram's arrival time (unix seconds and size, one per line): an independent view of
what the player got, for loss, duplicates and stalls. Arrival times are the kernel's
(SO_TIMESTAMPNS): when the datagram reached the player's socket, however late this
process runs.

    udp_recorder.py PORT FORWARD PLAYED.ts ARRIVALS.txt     (stops on SIGTERM)
"""
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS is the same


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
    rx.settimeout(0.2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(played_path, "wb") as played, open(arrivals_path, "w") as arrivals:
        print("ready", flush=True)
        while not stop:
            try:
                data, ancillary, _, _ = rx.recvmsg(65536, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            now = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    now = sec + nsec / 1e9
            tx.sendto(data, ("127.0.0.1", forward))
            played.write(data)
            played.flush()
            arrivals.write(f"{now:.6f} {len(data)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
