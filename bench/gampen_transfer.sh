#!/usr/bin/env bash
# GaMPEN's transfer-learning recipe (Ghosh et al. 2021) with the shipped gampen-base: a second survey setting
# (hsc-poor: worse seeing, twice the sky noise) with 353 labelled galaxies; trained from random weights, the
# shipped model as it is, and the shipped model fine-tuned; each calibrated on the same 300 test galaxies.
# Usage: bench/gampen_transfer.sh [OUT]   (docs/parameters.md; ~10 minutes on 2 cores)
set -euo pipefail
OUT=${1:-data/gampen-transfer}
GALZOO=${GALZOO:-.venv/bin/galzoo}
SLIM="--image-size 96 --zoom 1.5 1.5 --width 0.125 --batch-size 32 --seed 0"
$GALZOO prepare synthetic --n 700 --survey hsc-poor --out "$OUT/records" --test-size 300 --val-fraction 0.1 --seed 11
test -f "$OUT/scratch/model.keras" || $GALZOO train --task parameters --data "$OUT/records" $SLIM --epochs 30 \
  --learning-rate 3e-4 --out "$OUT/scratch" --resume
test -f "$OUT/fine-tuned/model.keras" || /usr/bin/time -f "fine-tuning took %e s" $GALZOO train --task parameters \
  --data "$OUT/records" $SLIM --epochs 15 --learning-rate 1e-4 --init-from gampen-base --out "$OUT/fine-tuned" --resume
for model in scratch gampen-base fine-tuned; do
  dir=$model; test "$model" = gampen-base || dir="$OUT/$model"
  $GALZOO calibrate --model "$dir" --data "$OUT/records" --out "$OUT/$model-calibration" --passes 100 --seed 0
done
