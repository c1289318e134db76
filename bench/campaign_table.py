"""The tables of docs/acquisition.md from the summary.json of one or more `galzoo acquire simulate` campaigns.

Campaigns run with the same --seed share their initial sets and their random arm, so their strategies can be
listed side by side against random. Prints markdown: paired differences per budget (x 1000, strategy minus random,
with the 90 % bootstrap interval), the savings at random's RMSE after each budget ("never": not reached), then
final RMSE, label savings and the batch diagnostics per strategy.

    python bench/campaign_table.py data/campaign/bar data/campaign/bar-power-epig
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def rows_of(folders: list[Path]) -> dict[str, dict]:
    """Per strategy (named with its campaign folder when two campaigns share a name): what its summary says."""
    strategies: dict[str, dict] = {}
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        metric = summary["primary_metric"]
        for strategy, final in summary[f"final_{metric}"].items():
            name = strategy if strategy not in strategies or strategy == "random" else f"{strategy} ({folder.name})"
            strategies[name] = {"final": final, "savings": summary.get("label_savings", {}).get(strategy),
                                "paired": summary.get("paired_differences", {}).get(strategy),
                                "by_budget": summary.get("savings_by_budget", {}).get(strategy),
                                "similarity": summary.get("batch_similarity", {}).get(strategy),
                                "acquired": summary.get("acquired_mean_true_rho", {}).get(strategy)}
    return strategies


def spread(values: list[float] | None) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("campaigns", type=Path, nargs="+")
    parser.add_argument("--every", type=int, default=2, help="Show every this many budgets.")
    args = parser.parse_args()
    strategies = rows_of(args.campaigns)
    paired = {name: row["paired"] for name, row in strategies.items() if row["paired"]}
    budgets = [r["new_labels"] for r in next(iter(paired.values()))][1::args.every]
    print("| new labels | " + " | ".join(str(b) for b in budgets) + " |")
    print("| --- | " + " | ".join("---" for _ in budgets) + " |")
    for name, rows in paired.items():
        by_budget = {r["new_labels"]: r for r in rows}
        cells = [f"{1000 * by_budget[b]['mean']:+.1f} [{1000 * by_budget[b]['interval_90'][0]:+.1f}, "
                 f"{1000 * by_budget[b]['interval_90'][1]:+.1f}]" for b in budgets if b in by_budget]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("| savings at random's RMSE after | " + " | ".join(str(b) for b in budgets) + " |")
    print("| --- | " + " | ".join("---" for _ in budgets) + " |")
    for name, row in strategies.items():
        if row["by_budget"]:
            by_budget = {r["new_labels"]: r["savings"] for r in row["by_budget"]}
            print(f"| {name} | " + " | ".join("never" if by_budget.get(b) is None else f"{by_budget[b]:+.0%}"
                                              for b in budgets) + " |")
    print()
    print("| strategy | final RMSE | label savings [90 %] | at RMSE | batch cosine similarity "
          "| mean true rho acquired |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, row in strategies.items():
        savings = row["savings"]
        saved = "-" if not savings or savings["savings"] is None else \
            f"{savings['savings']:+.0%} [{savings['interval_90'][0]:+.0%}, {savings['interval_90'][1]:+.0%}]"
        level = "-" if not savings or savings.get(savings["metric"]) is None else f"{savings[savings['metric']]:.4f}"
        print(f"| {name} | {row['final']:.4f} | {saved} | {level} | {spread(row['similarity'])} | "
              f"{spread(row['acquired'])} |")


if __name__ == "__main__":
    main()
