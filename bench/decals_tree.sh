#!/usr/bin/env bash
# A base model for the GZ DECaLS tree (docs/representation.md): simulated DECaLS galaxies whose simulated volunteers
# answer the GZ DECaLS tree, every question at 64 px; then its own heads, never shown a real galaxy, on the 470
# real DECaLS rings images, against the catalogue's three GZ DECaLS fractions (no mapping between trees needed).
# Usage: bench/decals_tree.sh [OUT] [N]   (N = 10000: ~15 minutes on 2 cores); needs ../shared/data/decals_rings
set -euo pipefail
OUT=${1:-data/decals-tree}
N=${2:-10000}
GALZOO=${GALZOO:-.venv/bin/galzoo}
PY=${PY:-.venv/bin/python}
RINGS=../shared/data/decals_rings
$GALZOO prepare synthetic --n "$N" --schema decals --survey decals --seed 100 --out "$OUT/pretrain"
test -f "$OUT/base/model.keras" || $GALZOO train --data "$OUT/pretrain" --question all --image-size 64 --batch-size 64 \
  --epochs 15 --mixed-precision --seed 0 --out "$OUT/base" --resume
test -f "$OUT/rings.parquet" || $GALZOO predict --model "$OUT/base" --images "$RINGS/images" --out "$OUT/rings.parquet" \
  --passes 30 --seed 0
$PY - "$OUT/rings.parquet" "$RINGS/catalogue.csv" <<'PY'
import sys

import pandas as pd
from scipy.stats import spearmanr

predicted = pd.read_parquet(sys.argv[1]).set_index("id")
catalogue = pd.read_csv(sys.argv[2]).set_index("iauname")
rho = predicted.loc[catalogue.index]
for column in ("smooth-or-featured_featured-or-disk", "disk-edge-on_no", "has-spiral-arms_no"):
    result = spearmanr(rho[f"{column}_rho_mean"], catalogue[f"{column}_fraction"])
    print(f"{column}: Spearman {result.statistic:+.3f} (p = {result.pvalue:.2g}, {len(rho)} real galaxies)")
PY
