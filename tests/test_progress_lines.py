"""Progress where stderr is not a terminal (a log file, CI, nohup): a few plain lines, not silence."""

from __future__ import annotations

from llamarch.cli.ui import ProgressLines, item_progress, training_progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_the_start_at_each_tenth_and_at_the_end() -> None:
    clock, lines = Clock(), []
    progress = ProgressLines("teacher samples", 40, clock=clock, write=lines.append)
    for _ in range(40):
        clock.now += 3.0
        progress.advance()
    progress.close()
    assert lines[0] == "teacher samples: 0/40 (0%), 0s"
    assert lines[1] == "teacher samples: 4/40 (10%), 12s, about 1m48s left"
    assert len(lines) == 11  # the start and ten tenths; the end is the tenth tenth, not repeated
    assert lines[-1] == "teacher samples: 40/40 (100%), 2m00s"


def test_a_run_that_stops_early_ends_with_what_it_did() -> None:
    clock, lines = Clock(), []
    progress = ProgressLines("held-out", 100, clock=clock, write=lines.append)
    for _ in range(7):
        clock.now += 2.0
        progress.advance()
    progress.close()
    assert lines == ["held-out: 0/100 (0%), 0s", "held-out: 7/100 (7%), 14s, about 3m06s left"]


def test_a_total_known_later_and_extra_text() -> None:
    clock, lines = Clock(), []
    progress = ProgressLines("training", None, clock=clock, write=lines.append)
    progress.advance(0, total=200, completed=50)  # resumed at step 50
    clock.now = 4000.0
    progress.advance(50, info="loss 0.512")
    assert lines == [
        "training: started",
        "training: 50/200 (25%), 0s",
        "training: 100/200 (50%), 1h06m, about 2h13m left  loss 0.512",  # 50 steps here in 4,000 s
    ]


def test_nothing_to_do_prints_nothing() -> None:
    lines: list[str] = []
    ProgressLines("repairs", 0, write=lines.append).close()
    assert lines == []


def test_the_commands_bars_print_lines_when_stderr_is_captured(capsys) -> None:
    with item_progress("student answers", 3) as advance:
        for _ in range(3):
            advance()
    with training_progress("training the student (LoRA)") as on_event:
        on_event({"event": "start", "total": 2, "step": 0, "truncated": 0, "dropped": 0})
        for step in (1, 2):
            on_event({"event": "step", "loss": 1.0 / step, "tokens_per_second": 30.0})
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("student answers: 0/3 (0%)") and err[-1].startswith("training the student (LoRA): 2/2")
    assert "student answers: 3/3 (100%)" in err[3] and "loss 0.500  30 tok/s" in err[-1]
    assert "training the student (LoRA): started" in err


def test_results_found_stored_at_the_start_do_not_count_in_the_pace() -> None:
    clock, lines = Clock(), []
    progress = ProgressLines("student answers", 10, clock=clock, write=lines.append)
    progress.advance(8)  # a resumed run: 8 answers were stored
    clock.now = 60.0
    progress.advance()
    assert lines[1:] == ["student answers: 8/10 (80%), 0s", "student answers: 9/10 (90%), 1m00s, about 1m00s left"]
