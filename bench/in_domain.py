"""In-domain quality on a held-out synthetic test split: RMSE against the noise floor, and coverage error.

    python bench/in_domain.py --data data/demo/synthetic --model base:bar,smooth \\
        --model data/demo/bar-model:bar --out data/bench/in-domain.json

For each MODEL:QUESTIONS, on the test split (galaxies asked the question, N >= 1): RMSE of
the predicted vote fraction k_hat/N against the observed k/N and against the true rho, the
binomial noise floor sqrt(mean rho(1 - rho)/N) from the true rho, and the MC coverage error
at every maximum error 0.02-0.20: at the dropout rate it was trained with, at the test-time dropout
rate tuned on the validation split, and recalibrated (that rate and the logit spread fitted
on the validation split), as calibrate --tune-dropout chooses them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def head_reports(model_dir: str, questions: list[str], data: Path, passes: int, seed: int) -> dict:
    from galzoo_tf.tasks.registry import load_model
    from galzoo_tf.tasks.votes.calibrate import (
        SPREAD_MAX_ERRORS,
        evaluate,
        outcomes,
        rho_samples,
        sample_split,
        tune_dropout,
    )
    from galzoo_tf.tasks.votes.posterior import DROPOUT_LAYER

    model = load_model(model_dir, "votes")
    heads = [h for h in model.heads if h.question in questions]
    trained = float(model.model.get_layer(DROPOUT_LAYER).rate)  # not a rate calibrate may have stored
    sampler = model.sampler(passes, True, seed, rate=trained)
    test, val = (sample_split([sampler], heads, data, split, 64) for split in ("test", "val"))
    report = {}
    for head in heads:
        tuning = tune_dropout(replace(val, heads=[head]), [sampler], RATES, 1)
        tuned, spread = tuning["dropout_rate"], tuning["logit_spread"]
        rows = {"rate": trained, "tuned_rate": tuned, "logit_spread": spread}
        settings = [("model", trained, 1.0), ("tuned", tuned, 1.0)] + ([("recalibrated", tuned, spread)]
                                                                      if spread != 1.0 else [])
        for name, rate, scale in settings:
            rho = rho_samples(test, [sampler], [rate], spreads=[scale])
            scored = evaluate(outcomes(replace(test, heads=[head]), rho), SPREAD_MAX_ERRORS)
            rows[name] = {"rmse": scored["rmse"], "coverage_error_mc": scored["coverage_error"]["mc"],
                          "galaxies": scored["galaxies"]}
        report[head.question] = rows
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True, help="MODEL_DIR:question,question")
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("data/bench/in-domain.json"))
    args = parser.parse_args()
    result = {"command": "python " + " ".join(sys.argv), "data": str(args.data), "passes": args.passes,
              "seed": args.seed, "machine": f"{platform.machine()}, {os.cpu_count()} cores", "models": {}}
    for spec in args.model:
        model_dir, questions = spec.rsplit(":", 1)
        result["models"][model_dir] = head_reports(model_dir, questions.split(","), args.data, args.passes, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    for model_dir, heads in result["models"].items():
        for question, rows in heads.items():
            for name in [n for n in ("model", "tuned", "recalibrated") if n in rows]:
                rmse, errors = rows[name]["rmse"], rows[name]["coverage_error_mc"]
                rate = rows["rate"] if name == "model" else rows["tuned_rate"]
                spread = rows["logit_spread"] if name == "recalibrated" else 1.0
                print(f"{model_dir} {question} {name}, rate {rate:.2f} spread {spread:g}: "
                      f"RMSE k/N {rmse['fraction_vs_observed']:.4f} "
                      f"(floor {rmse['noise_floor']:.4f}, x{rmse['fraction_vs_observed'] / rmse['noise_floor']:.2f})"
                      f" vs truth {rmse['fraction_vs_truth']:.4f}; coverage error "
                      + " ".join(f"{k}:{v:+.1%}" for k, v in errors.items()))


if __name__ == "__main__":
    main()
