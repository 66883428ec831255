"""Progress of `sparkify run` while it works: a line per step as it finishes, and a bar over the
bytes of the files being staged when the output is a terminal.

The lines come from Dagster hooks added to the in-process job (`JobDefinition.with_hooks`): a
success or failure hook fires as each step ends, and the step's rows are read back from the
materialization it just recorded in the run's instance. The bar comes from `track`, which the
staging loader calls around its file reads; it does nothing unless `show_bars` is on, so runs
started by `dagster dev`, the daemon or the tests never draw one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO

from dagster import AssetKey, HookContext, HookDefinition, failure_hook, success_hook

_bars: TextIO | None = None  # where to draw staging bars; None: no bars


def show_bars(out: TextIO | None) -> None:
    """Draw a bar per staging step on `out` (a terminal), or none (None)."""
    global _bars
    _bars = out


def track(
    label: str, reads: Iterable[tuple[object, bytes]], total_bytes: int
) -> Iterator[tuple[object, bytes]]:
    """Yield `reads` (file, bytes) unchanged, advancing a bar over `total_bytes` if bars are on."""
    if _bars is None:
        yield from reads
        return
    import shutil

    from tqdm import tqdm

    # shutil reads COLUMNS/LINES, then the terminal, and falls back when it reports 0 (as a fresh
    # pseudo-terminal does: tqdm would then hide its bar).
    size = shutil.get_terminal_size((100, 24))
    with tqdm(
        ncols=size.columns,
        nrows=size.lines,
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc=f"  {label}",
        leave=False,
        file=_bars,
        mininterval=0.5,
    ) as bar:
        for item in reads:
            bar.update(getattr(item[0], "size", None) or len(item[1]))  # stored bytes, as the total
            yield item


def _rows(context: HookContext, name: str) -> int | None:
    """Rows the step's materialization reports: the run's days for a daily table, else the table."""
    event = context.instance.get_latest_materialization_event(AssetKey(name))
    if event is None or event.run_id != context.run_id or event.asset_materialization is None:
        return None
    meta = event.asset_materialization.metadata
    value = meta.get("run_rows") or meta.get("dagster/row_count")
    return getattr(value, "value", None)


def step_hooks(asset_names: set[str], total: int, out: TextIO = sys.stdout) -> set[HookDefinition]:
    """Hooks printing `[n/total] step  rows  seconds` as each asset step ends (checks are counted
    and their seconds shown with the next asset's line; a failure is printed as it happens)."""
    state = {"done": 0, "since": time.perf_counter()}

    def line(context: HookContext, outcome: str) -> None:
        now = time.perf_counter()
        seconds, state["since"] = now - state["since"], now
        name = context.step_key
        if name not in asset_names:  # a check's own step
            if outcome != "ok":
                print(f"        check {name}: FAILED {seconds:7.1f} s", file=out, flush=True)
            return
        state["done"] += 1
        if outcome == "ok":
            rows = _rows(context, name)
            what = f"{rows:>12,} rows" if rows is not None else f"{'':>17}"
        else:
            what = f"{'FAILED':>17}"
        print(f"[{state['done']:>2}/{total}] {name:<30}{what} {seconds:7.1f} s", file=out, flush=True)

    @success_hook(name="sparkify_progress_ok")
    def ok(context: HookContext) -> None:
        line(context, "ok")

    @failure_hook(name="sparkify_progress_failed")
    def failed(context: HookContext) -> None:
        line(context, "failed")

    return {ok, failed}
