"""The distillation benchmark's prompt set and its contamination check (pure logic)."""

from __future__ import annotations

import importlib.util
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "distill_humaneval.py"
SOLUTIONS = SCRIPT.parent / "data" / "task_solutions"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("distill_humaneval", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_overlap_finds_shared_names_and_text(bench):
    refs = [
        "def below_zero(operations):\n"
        '    """ You\'re given a list of deposit and withdrawal operations on a bank account"""'
    ]
    texts = [
        'def Below_Zero(ops):\n    """ a list of deposit and withdrawal operations on a bank account, twice"""',
        'def chunk(items, size):\n    """ Split items into chunks."""',
    ]
    report = bench.overlap_report(texts, ["Below_Zero", "chunk"], refs, ["below_zero"], n=4)
    assert report["name_collisions"] == ["below_zero"]
    assert report["max_overlap_pair"] == ["Below_Zero", "below_zero"]
    grams = bench.ngrams(texts[0], 4)
    shared = grams & bench.ngrams(refs[0], 4)
    assert report["max_ngram_overlap"] == round(len(shared) / len(grams), 4) > 0.5
    assert report["prompts_sharing_any_ngram"] == 1


def test_overlap_ignores_number_only_ngrams(bench):
    report = bench.overlap_report(
        ["m = [[1, 2, 3], [4, 5, 6]] spiral"], ["spiral"], ["grid = [[1, 2, 3], [4, 5, 6]] path"], ["path"], n=4
    )
    assert report["max_ngram_overlap"] == 0.0 and report["prompts_sharing_any_ngram"] == 0


def test_shipped_tasks_do_not_overlap_humaneval(bench):
    tasks = bench.parse_tasks(bench.TASKS_FILE.read_text(encoding="utf-8"))
    assert len(tasks) >= 150
    assert len({t["entry_point"] for t in tasks}) == len(tasks)
    report = bench.check_overlap(tasks)
    assert report["name_collisions"] == [] and report["max_ngram_overlap"] == 0.0


def test_reference_solutions_pass_the_examples_of_the_tasks_they_cover(bench):
    """A wrong example would silently drop its task from every training set (no answer passes it)."""
    tasks = {t["entry_point"]: t for t in bench.parse_tasks(bench.TASKS_FILE.read_text(encoding="utf-8"))}
    covered = set()
    for path in sorted(SOLUTIONS.glob("*.py")):
        namespace = runpy.run_path(str(path))
        for name in tasks.keys() & namespace.keys():
            task = tasks[name]
            assert eval(task["call"], namespace) == eval(task["result"], namespace), f"{path.name}: {name}"
            covered.add(name)
    assert len(covered) >= 330


def test_parse_tasks_rejects_a_malformed_line(bench):
    with pytest.raises(ValueError, match=":2:"):
        bench.parse_tasks("# comment\nf(x) | no example here\n")


def test_task_examples_become_tests_that_run_in_the_sandbox(bench):
    """The verified recipe keeps a teacher answer only when it passes the task's example."""
    from llamarch.evals.humaneval import check_answer
    from llamarch.evals.sandbox import Limits

    tasks = bench.parse_tasks(bench.TASKS_FILE.read_text(encoding="utf-8"))
    problems = bench.task_problems(tasks)
    assert len(problems) == len(tasks) and all(p.task_id.startswith("python_tasks/") for p in problems)
    for problem in problems:
        compile(problem.prompt, problem.task_id, "exec")
        compile(problem.test, problem.task_id, "exec")
    chunk = next(p for p in problems if p.entry_point == "chunk_list")
    right = (
        "```python\ndef chunk_list(items, size):\n"
        "    return [items[i:i + size] for i in range(0, len(items), size)]\n```"
    )
    wrong = "```python\ndef chunk_list(items, size):\n    return [items]\n```"
    limits = Limits(timeout_s=5.0)
    assert check_answer(chunk, right, limits)[2].passed
    assert not check_answer(chunk, wrong, limits)[2].passed


def test_a_config_file_sets_an_experiments_options_and_flags_win(bench, tmp_path, capsys):
    config = tmp_path / "exp.json"
    config.write_text('{"recipe": "corrected", "out": "runs/x", "prompts": 163, "lr": 1e-4, "layers": 8}')
    args = bench.parse_args(["--config", str(config), "--layers", "4"])
    assert (args.recipe, args.out, args.prompts, args.lr, args.layers) == ("corrected", Path("runs/x"), 163, 1e-4, 4)
    assert bench.run_name(args) == "corrected"
    config.write_text('{"recipe": "corrected", "sampels": 3}')
    with pytest.raises(SystemExit) as stop:
        bench.parse_args(["--config", str(config)])
    assert stop.value.code == 2 and "unknown options sampels" in capsys.readouterr().err
    for name in (Path(bench.__file__).parent / "configs").glob("*.json"):  # the shipped ones parse
        bench.parse_args(["--config", str(name)])


def test_checked_recipes_refuse_bad_settings_in_one_line(bench, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--recipe", "judge", "--epochs", "2", "--no-copy"])
    assert stop.value.code == 2 and "--epochs takes a positive number" in capsys.readouterr().err


def test_paired_difference_is_mcnemars_exact_test_and_a_95_interval(bench):
    # 0 fixed, 6 broken: two-sided binomial 2 * (1/2)**6
    assert bench.paired_difference(0, 6, 164)["mcnemar_exact_p"] == round(2 / 64, 4)
    # 11 fixed, 9 broken: 2 * P(X <= 9), X ~ Bin(20, 1/2) = 0.8238
    same = bench.paired_difference(11, 9, 164)
    assert same["mcnemar_exact_p"] == 0.8238
    low, high = same["delta_95ci_points"]
    assert low < 100 * 2 / 164 < high and round(high - low, 1) == 10.7
    assert bench.paired_difference(0, 0, 164) == {"mcnemar_exact_p": 1.0, "delta_95ci_points": [0.0, 0.0]}
    # the p-value is symmetric and never above 1
    assert bench.paired_difference(9, 11, 164)["mcnemar_exact_p"] == 0.8238
    assert bench.paired_difference(5, 5, 164)["mcnemar_exact_p"] == 1.0


def test_a_missing_plotting_library_is_refused_before_any_work(bench, monkeypatch, capsys, tmp_path):
    real = bench.importlib.util.find_spec
    monkeypatch.setattr(bench.importlib.util, "find_spec", lambda name: None if name == "matplotlib" else real(name))

    def work_began(*_: object) -> None:
        raise AssertionError("the run began its work before checking for matplotlib")

    monkeypatch.setattr(bench, "parse_tasks", work_began)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--recipe", "corrected", "--out", str(tmp_path / "run"), "--no-copy"])
    assert stop.value.code == 2
    assert "the plot needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
