#!/usr/bin/env bash
# The Kaggle format end to end on a simulated release (docs/kaggle.md): 6,000 galaxies of the synthetic universe
# written as training_solutions_rev1.csv and 424 px GalaxyID.jpg files, read by `prepare kaggle` (pseudo-counts at
# N = 40), then the 37-answer RMSE on the same 1,200 test galaxies of: the shipped base model as it is, the base
# model fine-tuned, the paper's CNN and ResNet50 from random weights, beside the mean-label baseline; and the
# paper CNN again with pseudo-counts at N = 10 and 100 (what N changes).
# Usage: bench/kaggle.sh [OUT]; then python bench/kaggle.py OUT   (~50 minutes on 2 cores)
set -euo pipefail
OUT=${1:-data/kaggle-bench}
GALZOO=${GALZOO:-.venv/bin/galzoo}
PY=${PY:-.venv/bin/python}
COMMON="--question all --image-size 64 --batch-size 64 --mixed-precision --seed 0"
test -f "$OUT/project/training_solutions_rev1.csv" || $PY -m galzoo_tf.sim.kaggle_layout "$OUT/project" --n 6000 --seed 22
$GALZOO prepare kaggle --solutions "$OUT/project/training_solutions_rev1.csv" --images "$OUT/project/images_training_rev1" \
  --out "$OUT/records" --size 128 --seed 0
test -f "$OUT/fine-tuned/model.keras" || $GALZOO train --data "$OUT/records" $COMMON --init-from base --epochs 20 \
  --out "$OUT/fine-tuned" --resume
test -f "$OUT/paper/model.keras" || $GALZOO train --data "$OUT/records" $COMMON --epochs 20 --out "$OUT/paper" --resume
test -f "$OUT/resnet50/model.keras" || $GALZOO train --data "$OUT/records" $COMMON --architecture resnet50 --epochs 10 \
  --out "$OUT/resnet50" --resume
for model in base fine-tuned paper resnet50; do
  dir=$model; test "$model" = base || dir="$OUT/$model"
  $GALZOO calibrate --model "$dir" --data "$OUT/records" --out "$OUT/$model-calibration" --passes 10 --seed 0
done
for votes in 10 100; do
  $GALZOO prepare kaggle --solutions "$OUT/project/training_solutions_rev1.csv" \
    --images "$OUT/project/images_training_rev1" --out "$OUT/records-votes$votes" --size 128 --seed 0 --votes $votes
  test -f "$OUT/paper-votes$votes/model.keras" || $GALZOO train --data "$OUT/records-votes$votes" $COMMON --epochs 20 \
    --out "$OUT/paper-votes$votes" --resume
  $GALZOO calibrate --model "$OUT/paper-votes$votes" --data "$OUT/records-votes$votes" \
    --out "$OUT/paper-votes$votes-calibration" --passes 10 --seed 0
done
