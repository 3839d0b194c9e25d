"""Progress in farm logs: plain lines, the final state said exactly once."""
import io

from livingportrait_backend.progress import Progress


def test_log_lines_end_with_the_final_state_once():
    out = io.StringIO()
    bar = Progress(3, "render shot", stream=out)
    for done in (1, 2, 3):
        bar.update(done)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("render shot: 33% 1/3")
    assert sum("100% 3/3" in line for line in lines) == 1


def test_a_note_on_close_is_still_printed():
    out = io.StringIO()
    bar = Progress(2, "track", stream=out)
    bar.update(2)
    bar.close("2 frames without a face")
    assert out.getvalue().splitlines()[-1].endswith("2 frames without a face")


def test_the_rate_starts_after_the_first_frame():
    # A bar made on the first frame (as `render --connect` makes it) once said "1/96 196927.9/s".
    out = io.StringIO()
    bar = Progress(3, "render", stream=out, min_interval_s=0)
    bar.update(1)
    bar.update(3)
    first, last = out.getvalue().splitlines()
    assert first == "render: 33% 1/3"
    rate = float(last.split()[-1].removesuffix("/s"))
    assert last.startswith("render: 100% 3/3 ") and rate > 0
