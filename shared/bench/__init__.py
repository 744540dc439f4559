"""The paired benchmarks' machinery, beside their flags in `shared.cli.bench`.

- `measure`: timing blocks of updates, a training loop from its metrics log, peak memory,
  FLOPs, the machine's description, the JSON each side writes;
- `results`: reading those files back, checking them, pairing the sides' rows;
- `report`: the table and the chart (`python -m shared.bench.report`), drawn by `plot`.
"""
