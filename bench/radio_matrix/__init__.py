"""radio_matrix: the radio-matrix benchmark (bench/radio-matrix, docs/benchmarks.md).

    goals         the matrix's cells (cell delay x cell loss x dsrc behaviour) and the
                  issue's absolute goals as one pure function, judge()
    radio_matrix  the runner: one smigbed Bed (one edge, a two-radio car) per cell, real
                  smig-linkemu links, results.json and a Markdown table
                  (python3 -m radio_matrix.radio_matrix; bench/radio-matrix)

Run with bench/ and scripts/ (smigbed) on PYTHONPATH; bench/radio-matrix sets both.
"""
