"""Run the study: every (variant, task, seed) cell, one process per core, resumable.

    python -m benchmarks.study.run --budget full --workers 16          # the whole study (one 16-core machine)
    python -m benchmarks.study.run --budget small --workers 2 --tasks lift cube-single
    python -m benchmarks.study.plot --budget full                      # figures + tables into docs/
    python -m benchmarks.study.run --budget tuned --obs_mode pixels    # the sim tasks from joints + 2 cameras

Each cell writes `<results>/<budget>/<task>/<variant>/seed<k>.json` atomically when it finishes; a
rerun skips the cells whose file exists (delete a file to rerun its cell). OGBench play data is
generated sharded over the same workers (the sim cells run meanwhile) into `<results>/data/`, and
reused by every cell and every later run. `--obs_mode pixels` (the sim tasks only; tools.train's
--obs_mode) learns from the joint positions and the front and wrist cameras (`--image_size` pixels a
side); its cells go to `<results>/<budget>-pixels/...` (`plot --budget <budget>-pixels` draws them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.study.tasks import BUDGETS, TASKS, Budget, Task
from benchmarks.study.variants import DEFAULT_VARIANTS, RENAMED_VARIANTS, VARIANTS, recorded_names, variant_name
from contract import OBS_MODES
from policy.envs import IMAGE_SIZE, check_observation_mode

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
SHARD_EPISODES = 5          # play episodes per data-generation job (about 10 s of one core each)


def result_path(results_dir: str | Path, budget: str, task: str, variant: str, seed: int,
                obs_mode: str = "state") -> Path:
    """Pixels-mode cells live beside the state ones, under `<budget>-pixels`: their curves never mix."""
    folder = budget if obs_mode == "state" else f"{budget}-{obs_mode}"
    return Path(results_dir) / folder / task / variant / f"seed{seed}.json"


def has_result(results_dir: str | Path, budget: str, task: str, variant: str, seed: int,
               obs_mode: str = "state") -> bool:
    """Whether the cell has a result, under the variant's present name or a former one."""
    return any(result_path(results_dir, budget, task, name, seed, obs_mode).is_file()
               for name in recorded_names(variant))


def write_json_atomic(path: Path, record: dict[str, Any]) -> None:
    """Temp file in the same folder + rename: a reader (or a rerun) never sees half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- jobs (run in worker processes)
def _quiet_worker() -> None:
    import warnings

    # state observations never render: with no GL backend at all, dm_control (OGBench) imports on a
    # headless box without libEGL too; pixels mode sets MUJOCO_GL=egl in the driver, which workers inherit
    os.environ.setdefault("MUJOCO_GL", "disable")
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.basicConfig(level=logging.WARNING)


def _data_shard_job(domain: str, episodes: int, episode_length: int, seed: int) -> dict:
    _quiet_worker()
    from benchmarks.study.ogbench_data import collect_play_episodes

    return collect_play_episodes(domain, episodes, episode_length, noise=0.1, seed=seed)


def _cell_job(variant: str, task: str, seed: int, budget: str, data_dir: str, out: str,
              obs_mode: str = "state", image_size: int = IMAGE_SIZE) -> dict[str, Any]:
    _quiet_worker()
    import torch

    torch.set_num_threads(1)
    from benchmarks.study.cell import run_cell

    record = run_cell(VARIANTS[variant], TASKS[task], seed, BUDGETS[budget], data_dir, obs_mode, image_size)
    write_json_atomic(Path(out), record)
    return {"variant": variant, "task": task, "seed": seed, "wall_s": record["wall_s"]["total"],
            "final": record["curve"][-1]["success_rate"] if record["curve"] else float("nan")}


# ---------------------------------------------------------------- driver
def submit_missing_data(pool: ProcessPoolExecutor, tasks: list[Task], budget: Budget, data_dir: Path,
                        log: logging.Logger) -> dict[str, tuple[Path, list[Future], list[Future]]]:
    """Queue the generation of each missing OGBench dataset (train + '-val'), sharded over the pool.
    Returns task name -> (path, train shard futures, val futures); tasks with data are left out."""
    from benchmarks.study.ogbench_data import domain_of, val_path

    jobs = {}
    for task in tasks:
        if task.kind != "ogbench":
            continue
        path = task.dataset_path(data_dir, budget)
        if path.is_file() and val_path(path).is_file():
            continue
        domain, n, length = domain_of(task.env_id), budget.ogbench_episodes, budget.ogbench_episode_length
        shards = [(i, min(SHARD_EPISODES, n - i)) for i in range(0, n, SHARD_EPISODES)]
        # a shard's seed depends on its first episode only, so the data does not depend on --workers;
        # the validation split is never trained on (OGBench's loader wants the file): keep it small
        train = [pool.submit(_data_shard_job, domain, k, length, 1_000 + i) for i, k in shards]
        val = [pool.submit(_data_shard_job, domain, max(1, n // 50), length, 999_999)]
        jobs[task.name] = (path, train, val)
        log.info("generating %s: %d play episodes of %d steps (+%d validation) in %d jobs", path.name, n, length,
                 max(1, n // 50), len(shards) + 1)
    return jobs


def save_generated(path: Path, train: list[Future], val: list[Future]) -> None:
    from benchmarks.study.ogbench_data import concatenate_shards, save_npz_atomic, val_path

    save_npz_atomic(val_path(path), concatenate_shards([f.result() for f in val]))
    save_npz_atomic(path, concatenate_shards([f.result() for f in train]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="small", choices=sorted(BUDGETS))
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=[*VARIANTS, *RENAMED_VARIANTS],
                   help="default: the study's six (ablations run only when named); the former seed_* names "
                        "still work")
    p.add_argument("--tasks", nargs="+", default=None, choices=list(TASKS),
                   help="default: every task (pixels mode: the sim tasks)")
    p.add_argument("--obs-mode", "--obs_mode", default="state", choices=OBS_MODES,
                   help="state: the tasks' own state; pixels (sim tasks): joint positions + front and wrist cameras")
    p.add_argument("--image-size", "--image_size", type=int, default=IMAGE_SIZE,
                   help="pixels mode: camera frames, this many pixels a side")
    p.add_argument("--seeds", type=int, default=None, help="seeds per cell (default: the budget's)")
    p.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--dry-run", action="store_true", help="list the cells that would run, run nothing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    log = logging.getLogger("study")
    args.variants = list(dict.fromkeys(variant_name(v) for v in args.variants))

    budget = BUDGETS[args.budget]
    seeds = budget.seeds if args.seeds is None else args.seeds
    pixels = args.obs_mode == "pixels"
    try:
        check_observation_mode(args.obs_mode, args.image_size)
    except ValueError as e:
        p.error(str(e))
    if args.tasks is None:
        args.tasks = [t for t in TASKS if TASKS[t].kind == "sim" or not pixels]
    if pixels and (no_pixels := [t for t in args.tasks if TASKS[t].kind != "sim"]):
        p.error(f"--obs_mode pixels is a setting of the sim tasks ({', '.join(t for t in TASKS if TASKS[t].kind == 'sim')}); "
                f"{', '.join(no_pixels)} observe their own state: drop them from --tasks")
    if pixels:
        os.environ.setdefault("MUJOCO_GL", "egl")   # the cells render; spawned workers inherit it before importing MuJoCo
    tasks = [TASKS[t] for t in args.tasks]
    data_dir = args.results_dir / "data"
    cells = [(v, t.name, s) for t in tasks for v in args.variants for s in range(seeds)]
    todo = [c for c in cells if not has_result(args.results_dir, budget.name, c[1], c[0], c[2], args.obs_mode)]
    # seed by seed (a run cut short still has every cell's first seeds), longest tasks first within a
    # seed (episodes of cube-double and pick-place are the longest), so the tail is short
    order = {"cube-double": 0, "pickplace": 1, "cube-single": 2, "lift": 3}
    todo.sort(key=lambda c: (c[2], order.get(c[1], 9), c[0]))
    log.info("budget %s: %d cells, %d done, %d to run on %d workers", budget.name, len(cells),
             len(cells) - len(todo), len(todo), args.workers)
    if args.dry_run:
        for c in todo:
            print(*c)
        return 0
    if not todo:
        return 0

    t0 = time.perf_counter()
    failures = 0
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        data_jobs = submit_missing_data(pool, [TASKS[t] for t in {c[1] for c in todo}], budget, data_dir, log)
        pending: dict[Future, tuple[str, ...]] = {}

        def submit_cells(task: str | None) -> None:
            for v, t, s in todo:
                if (task is None and t not in data_jobs) or t == task:
                    out = str(result_path(args.results_dir, budget.name, t, v, s, args.obs_mode))
                    pending[pool.submit(_cell_job, v, t, s, budget.name, str(data_dir), out, args.obs_mode,
                                        args.image_size)] = (v, t, str(s))

        submit_cells(None)                      # cells whose data exists start at once
        for task, (_path, train, val) in data_jobs.items():
            for f in train + val:
                pending[f] = ("data", task)
        done = 0
        data_handled: set[str] = set()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                tag = pending.pop(f)
                if tag[0] == "data":            # a shard of a dataset: once all are in, save it, queue its cells
                    path, train, val = data_jobs[tag[1]]
                    if tag[1] not in data_handled and all(x.done() for x in train + val):
                        data_handled.add(tag[1])
                        try:
                            save_generated(path, train, val)
                        except Exception as e:  # noqa: BLE001
                            failures += sum(1 for c in todo if c[1] == tag[1])
                            log.error("generating %s FAILED: %r; its cells are skipped", path.name, e)
                            continue
                        log.info("data %s ready after %.0f s", path.name, time.perf_counter() - t0)
                        submit_cells(tag[1])
                    continue
                v, t, s = tag
                done += 1
                try:
                    r = f.result()
                    log.info("[%d/%d] %s %s seed %s: final success %.2f, %.0f s", done, len(todo), t, v, s,
                             r["final"], r["wall_s"])
                except Exception as e:  # one broken cell must not lose the others' results  # noqa: BLE001
                    failures += 1
                    log.error("[%d/%d] %s %s seed %s FAILED: %r", done, len(todo), t, v, s, e)
    log.info("finished %d cells in %.0f s (%d failed)", len(todo), time.perf_counter() - t0, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
