#!/usr/bin/env bash
# Walmsley et al. (2019) Tables 1-2 on simulated records: smooth and bar models trained from random weights
# with the paper's choices (softmax heads, linear 128-unit dense layer, bar on N >= 10), the same with galzoo's
# earlier ReLU dense layer, each calibrated on the test split (single network = each MC network alone).
# Usage: bench/paper_tables.sh [OUT]   (docs/posteriors.md; ~45 minutes on 2 cores)
set -euo pipefail
OUT=${1:-data/paper-tables}
GALZOO=${GALZOO:-.venv/bin/galzoo}
$GALZOO prepare synthetic --n 12000 --seed 0 --test-size 2500 --out "$OUT/records"
for question in bar smooth; do
  for activation in linear relu; do
    run="$OUT/$question-$activation"
    test -f "$run/model.keras" || $GALZOO train --data "$OUT/records" --question "$question" --image-size 64 \
      --epochs 20 --mixed-precision --dense-activation "$activation" --seed 0 --out "$run" --resume
    $GALZOO calibrate --model "$run" --data "$OUT/records" --out "$run-calibration" --passes 30 --seed 0
  done
done
