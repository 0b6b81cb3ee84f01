"""YouTube chapters: a list YouTube accepts, or a plain reason why there is none."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.chapters import ChapterPlan, match_title, plan_chapters, render

# --- an independent statement of YouTube's rules, read off the rendered text ------------

_LINE = re.compile(r"(?:(?P<h>[1-9][0-9]*):(?P<m2>[0-5][0-9])|(?P<m>[1-5]?[0-9])):(?P<s>[0-5][0-9]) (?P<title>.*)")


def youtube_violations(text: str, duration: float | None) -> list[str]:
    """Every way ``text`` breaks YouTube's chapter rules (empty when it would show)."""
    problems = []
    if not text.endswith("\n"):
        problems.append("no final newline")
    lines = text.split("\n")[:-1]
    if len(text.splitlines()) != len(lines):
        problems.append("a title spans more than one line")
    times = []
    for line in lines:
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append(f"unreadable line {line!r}")
            continue
        hours = int(match["h"] or 0)
        minutes = int(match["m2"] if match["h"] else match["m"])
        times.append(hours * 3600 + minutes * 60 + int(match["s"]))
        title = match["title"]
        if not title or title != title.strip():
            problems.append(f"empty or untrimmed title {title!r}")
        if len(title) > 100:
            problems.append(f"title longer than 100 characters: {title!r}")
        if "<" in title or ">" in title:
            problems.append(f"angle bracket in {title!r}")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in title):
            problems.append(f"control character in {title!r}")
    if len(times) < 3:
        problems.append("fewer than 3 chapters")
    if times and times[0] != 0:
        problems.append("first chapter not at 0:00")
    for earlier, later in itertools.pairwise(times):
        if later - earlier < 10:
            problems.append(f"chapter at {earlier} s lasts {later - earlier} s")
    if times and duration is not None and duration - times[-1] < 10:
        problems.append(f"last chapter at {times[-1]} s lasts {duration - times[-1]} s")
    return problems


def lines_of(plan: ChapterPlan) -> list[str]:
    return render(plan).splitlines()


# --- examples ---------------------------------------------------------------------------


def test_a_valid_list_passes_through_unchanged() -> None:
    candidates = [
        (0, "Opening ceremony"),
        (723, "Match 101 · Semifinals M -68kg · Perica (CRO) vs Stevica (GER)"),
        (1450, "Match 102 · Semifinals M -68kg · Kim (KOR) vs Silva (BRA)"),
        (3723, "Match 103 · Final M -68kg · Perica (CRO) vs Kim (KOR)"),
    ]
    plan = plan_chapters(candidates, stream_duration_seconds=5000)
    assert plan.valid and plan.problem is None
    assert plan.notes == []
    assert [(c.seconds, c.title) for c in plan.chapters] == candidates
    assert render(plan) == (
        "0:00 Opening ceremony\n"
        "12:03 Match 101 · Semifinals M -68kg · Perica (CRO) vs Stevica (GER)\n"
        "24:10 Match 102 · Semifinals M -68kg · Kim (KOR) vs Silva (BRA)\n"
        "1:02:03 Match 103 · Final M -68kg · Perica (CRO) vs Kim (KOR)\n"
    )


def test_a_match_reloaded_within_ten_seconds_supersedes_the_earlier_load() -> None:
    plan = plan_chapters([(0, "Start"), (723, "Match 101"), (727, "Match 102"), (900, "Match 103")])
    assert lines_of(plan) == ["0:00 Start", "12:07 Match 102", "15:00 Match 103"]
    assert plan.notes == [
        "dropped 'Match 101' at 12:03: only 4 s before 'Match 102' (YouTube needs 10 s)"
    ]


def test_a_burst_of_loads_keeps_only_the_one_that_stayed() -> None:
    plan = plan_chapters(
        [(0, "Start"), (100, "A"), (105, "B"), (112, "C"), (300, "D")]
    )
    assert lines_of(plan) == ["0:00 Start", "1:52 C", "5:00 D"]
    assert len(plan.notes) == 2


def test_exactly_ten_seconds_is_long_enough() -> None:
    plan = plan_chapters([(0, "A"), (10, "B"), (20, "C")], stream_duration_seconds=30)
    assert plan.valid and plan.notes == []


def test_times_are_floored_to_the_second_before_the_rules_apply() -> None:
    plan = plan_chapters([(0.9, "A"), (10.0, "B"), (20.99, "C")])
    assert lines_of(plan) == ["0:00 A", "0:10 B", "0:20 C"]
    assert plan.notes == []
    # 9.99 s apart as floats, but 9 s apart as YouTube reads the lines.
    plan = plan_chapters([(0, "A"), (10.0, "B"), (19.99, "C"), (40, "D")])
    assert lines_of(plan) == ["0:00 A", "0:19 C", "0:40 D"]
    assert plan.notes == ["dropped 'B' at 0:10: only 9 s before 'C' (YouTube needs 10 s)"]


def test_a_first_chapter_after_zero_gets_an_intro() -> None:
    plan = plan_chapters([(95, "Match 101"), (600, "Match 102")], intro_title="Court 3 opens")
    assert lines_of(plan) == ["0:00 Court 3 opens", "1:35 Match 101", "10:00 Match 102"]
    assert plan.notes == [
        "added 'Court 3 opens' at 0:00: the first chapter is at 1:35, and YouTube's list must "
        "start at 0:00"
    ]


def test_the_intro_is_called_start_by_default() -> None:
    plan = plan_chapters([(95, "Match 101"), (600, "Match 102")])
    assert lines_of(plan)[0] == "0:00 Start"


def test_a_first_chapter_within_ten_seconds_replaces_the_intro() -> None:
    plan = plan_chapters([(7, "Match 101"), (600, "Match 102"), (1200, "Match 103")])
    assert lines_of(plan) == ["0:00 Match 101", "10:00 Match 102", "20:00 Match 103"]
    assert plan.notes == [
        "moved 'Match 101' from 0:07 to 0:00: YouTube's first chapter must start at 0:00"
    ]


def test_negative_times_clamp_to_zero_and_the_latest_of_them_wins() -> None:
    plan = plan_chapters([(-300, "Match 100"), (-40, "Match 101"), (600, "Match 102"), (900, "Match 103")])
    assert lines_of(plan) == ["0:00 Match 101", "10:00 Match 102", "15:00 Match 103"]
    assert "moved 'Match 101' from -0:40 to 0:00: it began before the stream" in plan.notes
    assert "dropped 'Match 100' at 0:00: only 0 s before 'Match 101' (YouTube needs 10 s)" in plan.notes


def test_fewer_than_three_chapters_is_not_valid_and_says_why() -> None:
    plan = plan_chapters([(0, "Match 101"), (600, "Match 102")])
    assert not plan.valid
    assert plan.problem == (
        "only 2 chapter(s) left after cleaning; YouTube shows chapters only when there are at least 3"
    )
    with pytest.raises(ValueError, match="invalid chapter plan: only 2"):
        render(plan)


def test_cleaning_can_make_a_list_too_short() -> None:
    plan = plan_chapters([(0, "A"), (5, "B"), (8, "C")])
    assert not plan.valid
    assert [c.title for c in plan.chapters] == ["C"]
    assert len(plan.notes) == 3  # A and B dropped, C moved to 0:00


def test_no_candidates_is_not_valid() -> None:
    plan = plan_chapters([])
    assert not plan.valid
    assert plan.notes == ["added 'Start' at 0:00: none was left, and YouTube's list must start at 0:00"]


def test_a_last_chapter_too_close_to_the_known_end_is_dropped() -> None:
    plan = plan_chapters(
        [(0, "Start"), (600, "Match 101"), (1200, "Match 102"), (1795, "Closing")],
        stream_duration_seconds=1801.5,
    )
    assert lines_of(plan) == ["0:00 Start", "10:00 Match 101", "20:00 Match 102"]
    assert plan.notes == [
        "dropped 'Closing' at 29:55: only 6 s before the end of the stream (YouTube needs 10 s)"
    ]


def test_a_last_chapter_is_kept_when_the_end_is_unknown() -> None:
    plan = plan_chapters([(0, "Start"), (600, "Match 101"), (1795, "Closing")])
    assert plan.valid and plan.notes == []


def test_chapters_at_or_after_the_end_are_dropped() -> None:
    plan = plan_chapters(
        [(0, "A"), (100, "B"), (200, "C"), (300, "D"), (400, "E")], stream_duration_seconds=300
    )
    assert [c.title for c in plan.chapters] == ["A", "B", "C"]
    assert plan.notes[0] == "dropped 'D' at 5:00: at or after the end of the stream (5:00)"


def test_duplicates_and_repeated_loads_of_one_match() -> None:
    plan = plan_chapters(
        [(0, "Start"), (600, "Match 101"), (600, "Match 101"), (900, "Match 101"), (1500, "Match 102")]
    )
    assert lines_of(plan) == ["0:00 Start", "10:00 Match 101", "25:00 Match 102"]
    assert plan.notes == [
        "dropped a duplicate of 'Match 101' at 10:00",
        "dropped 'Match 101' at 15:00: the same match goes on from the chapter at 10:00",
    ]


def test_titles_are_cleaned_for_a_single_line_description() -> None:
    long_title = "Match 104 · " + "Verylongname " * 10
    plan = plan_chapters(
        [
            (0, "  Start\n"),
            (600, "Match 101\r\n·\tQuarterfinals\x00"),
            (900, "   "),
            (1200, "Match <102>"),
            (1500, long_title),
        ]
    )
    assert plan.valid
    titles = [c.title for c in plan.chapters]
    assert titles[:3] == ["Start", "Match 101 · Quarterfinals", "Match ‹102›"]
    assert len(titles[3]) == 100 and titles[3].endswith("Verylongn…")
    assert plan.notes == [
        "dropped an untitled chapter at 15:00",
        "replaced < and > in 'Match ‹102›': YouTube refuses them in descriptions",
        f"shortened '{titles[3]}' to 100 characters",
    ]


def test_non_finite_times_are_dropped() -> None:
    plan = plan_chapters([(0, "A"), (math.nan, "B"), (100, "C"), (math.inf, "D"), (200, "E")])
    assert [c.title for c in plan.chapters] == ["A", "C", "E"]
    assert plan.notes == ["dropped 'B': its time nan is not a number", "dropped 'D': its time inf is not a number"]


def test_a_list_too_big_for_a_description_is_flagged() -> None:
    plan = plan_chapters([(i * 60, f"Match {i} · " + "x" * 80) for i in range(80)])
    assert plan.valid
    assert plan.notes[-1].startswith("the list is ")
    assert "at most 5000" in plan.notes[-1]


@pytest.mark.parametrize("bad", ["", "   ", "a <b>", "x" * 101])
def test_an_unusable_intro_title_is_a_caller_error(bad: str) -> None:
    with pytest.raises(ValueError, match="intro title"):
        plan_chapters([(100, "A")], intro_title=bad)


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf])
def test_an_impossible_duration_is_a_caller_error(bad: float) -> None:
    with pytest.raises(ValueError, match="stream duration"):
        plan_chapters([(0, "A")], stream_duration_seconds=bad)


def test_render_switches_to_hours_at_one_hour() -> None:
    plan = plan_chapters([(0, "A"), (3599, "B"), (3600 + 59, "C"), (36000, "D")])
    assert [line.split(" ")[0] for line in lines_of(plan)] == ["0:00", "59:59", "1:00:59", "10:00:00"]


# --- match titles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            (101, "Semifinals", "M -68kg", "Perica", "CRO", "Stevica", "GER"),
            "Match 101 · Semifinals M -68kg · Perica (CRO) vs Stevica (GER)",
        ),
        (("101A", None, "F +73kg", None, None, None, None), "Match 101A · F +73kg"),
        ((None, "Final", None, "Kim", None, None, "BRA"), "Final · Kim vs BRA"),
        ((7, None, None, "Perica", "CRO", None, None), "Match 7 · Perica (CRO)"),
        ((" 12 ", " Round\nof 16 ", "", "  ", "", "Lee", "KOR"), "Match 12 · Round of 16 · Lee (KOR)"),
        ((None,) * 7, ""),
    ],
)
def test_match_title_leaves_out_what_is_unknown(parts: tuple, expected: str) -> None:
    assert match_title(*parts) == expected


def test_a_match_without_any_title_becomes_a_note() -> None:
    plan = plan_chapters([(0, "Start"), (600, match_title()), (900, "Match 2"), (1200, "Match 3")])
    assert plan.valid
    assert plan.notes == ["dropped an untitled chapter at 10:00"]


# --- properties -------------------------------------------------------------------------

titles = st.one_of(
    st.text(max_size=130),
    st.text(alphabet="ab <>\n\t", min_size=90, max_size=130),
    st.sampled_from(["Match 101", "Match 102", " ", "a<b>", "\n", "Start"]),
)
times = st.one_of(
    st.floats(min_value=-100, max_value=20_000),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.integers(-20, 200),
)
durations = st.none() | st.floats(min_value=0, max_value=25_000)


@given(st.lists(st.tuples(times, titles), max_size=40), durations)
def test_any_input_gives_a_youtube_valid_list_or_a_reason(
    candidates: list[tuple[float, str]], duration: float | None
) -> None:
    plan = plan_chapters(candidates, stream_duration_seconds=duration)
    if not plan.valid:
        assert plan.problem
        with pytest.raises(ValueError):
            render(plan)
        return
    assert plan.problem is None
    assert youtube_violations(render(plan), duration) == []
    if len(plan.chapters) < len(candidates):
        assert plan.notes, "something was left out without a note"


@st.composite
def valid_lists(draw: st.DrawFn) -> tuple[list[tuple[int, str]], float | None]:
    gaps = draw(st.lists(st.integers(10, 5000), min_size=2, max_size=30))
    starts = [0]
    for gap in gaps:
        starts.append(starts[-1] + gap)
    names = [f"Match {i}" for i in range(len(starts))]
    duration = draw(st.none() | st.floats(min_value=starts[-1] + 10, max_value=starts[-1] + 10_000))
    return list(zip(starts, names, strict=True)), duration


@given(valid_lists())
def test_any_valid_list_passes_through_unchanged(case: tuple[list[tuple[int, str]], float | None]) -> None:
    candidates, duration = case
    plan = plan_chapters(candidates, stream_duration_seconds=duration)
    assert plan.valid
    assert plan.notes == []
    assert [(c.seconds, c.title) for c in plan.chapters] == candidates
    assert youtube_violations(render(plan), duration) == []


def test_the_rule_checker_catches_each_rule() -> None:
    assert youtube_violations("0:00 A\n0:10 B\n0:20 C\n", 30) == []
    assert youtube_violations("0:01 A\n0:11 B\n0:21 C\n", None) == ["first chapter not at 0:00"]
    assert youtube_violations("0:00 A\n0:09 B\n0:20 C\n", None) == ["chapter at 0 s lasts 9 s"]
    assert youtube_violations("0:00 A\n0:10 B\n", None) == ["fewer than 3 chapters"]
    assert youtube_violations("0:00 A\n0:10 B\n0:20 C\n", 29) == ["last chapter at 20 s lasts 9 s"]
    assert youtube_violations("0:00 A\n0:10 \n0:20 C\n", None) == ["empty or untrimmed title ''"]
    assert youtube_violations("0:00 A\n0:10 B\u2028x\n0:20 C\n", None) == ["a title spans more than one line"]
    assert youtube_violations("0:00 A\n00:10 B\n0:20 C\n", None) == ["unreadable line '00:10 B'", "fewer than 3 chapters"]
