"""smigbed: the edge demo's and the system tests' testbed, a whole smig edge on one machine.

    testbed       network namespaces, veth links and bridges, the processes (data planes,
                  PMM/MDM/SMM, smig-linkemu, the player), link control, smigctl, /metrics
    analysis      what a bed recorded, measured: bytes lost, duplicates, gaps, stalls, and
                  the summary.json contract
    verdict       a summary judged PASS or FAIL against the drive's absolute goals and
                  the session following the car (the demo's exit code, check_demo.py)
    plotting      timeline.png (matplotlib)
    scenario      edge-demo drives (scripts/scenarios/*.yaml), their goals, and the nearest
                  edge over time
    trace         SUMO mobility traces (sumo --fcd-output), read and checked
    radio         the edges file beside a trace, and the radio model: distance -> links
    trace_drive   one vehicle of a trace as a drive (a scenario), with its goals
    edge_demo     the edge demo (python3 -m smigbed.edge_demo; scripts/edge-demo)
    udp_recorder  the player's socket, recorded (started by the testbed)

Import the modules themselves (`from smigbed import testbed`); with this package's
directory (scripts/) on PYTHONPATH. Importing the package alone loads nothing, so that
`python3 -m smigbed.udp_recorder` starts quickly.
"""
