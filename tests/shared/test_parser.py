"""The PSS parser against every variant in pss-protocol.md §1, §2 and §5, and the sample capture."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pss.parser import MAX_DATAGRAM_BYTES, Category, parse_datagram, parse_line
from shared.pss.times import format_clock, parse_clock

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "reconstructed_pss_stream_20250720-20250809.tsv"


def one(data: bytes | str):
    events = parse_datagram(data.encode() if isinstance(data, str) else data)
    assert len(events) == 1
    return events[0]


# --- §1 framing and field variants ----------------------------------------------------


@pytest.mark.parametrize("line", ["sc1;3;sc2;4", "sc1;3;sc2;4;", "sc1; 3;sc2; 4", " sc1;3;sc2;4 \r\n"])
def test_score_variants_agree(line: str) -> None:
    event = one(line)
    assert event.valid and event.code == "sc1"
    assert event.fields == {"blue_score": 3, "red_score": 4}


def test_space_after_separator_in_round_scores() -> None:
    event = one("s12; 8")
    assert event.valid
    assert event.fields == {"blue_round_scores": {"2": 8}, "red_round_scores": {}}


def test_empty_fields_keep_their_position() -> None:
    gen2 = one("mch;101;Round of 16;MEN -80kg;;#0000ff;#FFFFFF;#ff0000;#FFFFFF;a14ddd5c;Senior;3;120;cntDown;18;1")
    assert gen2.valid
    assert gen2.fields["rounds_field"] == ""
    assert gen2.fields["match_id"] == "a14ddd5c"
    assert gen2.fields["division"] == "Senior"
    assert gen2.fields["round_duration"] == 120
    assert gen2.fields["head_hit_level"] == 1
    ref = one("ref;;;ju1;;;ju2;;;ta;;;")
    assert ref.valid
    assert ref.fields["officials"]["ta"] == {"name": "", "noc": ""}
    assert set(ref.fields["officials"]) == {"referee", "ju1", "ju2", "ta"}


def test_gen3_mch_with_null_id_and_text_match_number() -> None:
    event = one("mch;245.A;Bronze medal contest;M +87kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Under 21;3;120;cntDown;23;5;")
    assert event.valid
    assert event.fields["match_number"] == "245.A"
    assert event.fields["match_id"] is None
    assert event.fields["weight_class"] == "M +87kg"
    assert event.fields["body_hit_level"] == 23


@pytest.mark.parametrize(
    ("line", "seconds", "action"),
    [
        ("clk;2:00", 120, None),
        ("clk;02:00;start", 120, "start"),
        ("clk;01:59", 119, None),
        ("clk;0:00;stopEnd", 0, "stopEnd"),
        ("clk;00:00;stop", 0, "stop"),
        ("clk;0.00;stopEnd;", 0, "stopEnd"),
        ("clk;1:50;corr", 110, "corr"),
        ("brk;58;", 58, None),
        ("brk;0;stopEnd;", 0, "stopEnd"),
        ("brk;00:59", 59, None),
        ("brk;0:00;stopEnd", 0, "stopEnd"),
    ],
)
def test_clock_formats(line: str, seconds: int, action: str | None) -> None:
    event = one(line)
    assert event.valid, event.error
    assert event.fields["seconds"] == seconds
    assert event.fields["action"] == action


@pytest.mark.parametrize("text", ["", "x", "1:5", "1:60", "²:00", "-1", "1:00:00"])
def test_parse_clock_rejects_non_clock_values(text: str) -> None:
    assert parse_clock(text) is None


def test_format_clock_round_trips() -> None:
    assert format_clock(120) == "2:00"
    assert all(parse_clock(format_clock(s)) == s for s in range(0, 600))


def test_bad_clock_action_is_invalid_not_fatal() -> None:
    event = one("clk;01:00;sprint")
    assert not event.valid
    assert "sprint" in (event.error or "")
    assert event.raw == "clk;01:00;sprint"


@pytest.mark.parametrize(
    ("line", "by", "state", "result", "won"),
    [
        ("ch1", "blue", "requested", None, None),
        ("ch2;", "red", "requested", None, None),
        ("ch0;1;", "referee", "accepted", 1, None),
        ("ch1;0", "blue", "denied", 0, None),
        ("ch1;-1", "blue", "closed", -1, None),
        ("ch2;-1;", "red", "closed", -1, None),
        ("ch1;1;1;", "blue", "accepted", 1, True),
        ("ch0;1;0;", "referee", "accepted", 1, False),
    ],
)
def test_challenges(line: str, by: str, state: str, result: int | None, won: bool | None) -> None:
    event = one(line)
    assert event.valid and event.category is Category.REFEREE
    assert event.fields == {"by": by, "state": state, "result": result, "won": won}


def test_multi_line_datagram_with_crlf_and_quotes() -> None:
    events = parse_datagram(b"\"pt1;3\"\r\n'hl2;13'\r\nsc1; 3;sc2; 4\r\n")
    assert [e.code for e in events] == ["pt1", "hl2", "sc1"]
    assert all(e.valid for e in events)
    assert events[0].fields == {"athlete": "blue", "points": 3, "technique": "head"}
    assert events[1].fields == {"athlete": "red", "level": 13}


def test_non_ascii_names_arrive_intact() -> None:
    event = one("at1;Marko Drakulić;Marko Drakulić;CRO;at2;Metko Kalašnjikov;Metko Kalašnjikov;RUS".encode())
    assert event.valid
    assert event.fields["blue_name"] == "Marko Drakulić"
    assert event.fields["red_name"] == "Metko Kalašnjikov"
    assert event.fields["red_noc"] == "RUS"


def test_invalid_utf8_keeps_raw_and_flags() -> None:
    # Gen2 cuts multi-byte messages short: the last byte of "ć" is lost.
    event = one("wmh;Marko Drakulić".encode()[:-1])
    assert not event.valid
    assert "invalid UTF-8" in (event.error or "")
    assert event.raw == "wmh;Marko Drakuli\\xc4"
    assert event.code == "wmh"


def test_oversized_datagram_is_stored_verbatim() -> None:
    data = b"pt1;3;" * (MAX_DATAGRAM_BYTES // 6 + 1)
    event = one(data)
    assert not event.valid
    assert "oversized" in (event.error or "")
    assert event.raw == data.decode()


def test_unknown_code() -> None:
    event = one("zzz;1;2")
    assert not event.valid
    assert event.code == "zzz"
    assert "unknown" in (event.error or "")


def test_empty_datagram() -> None:
    event = one(b"\r\n")
    assert not event.valid
    assert event.error == "empty datagram"


# --- §2 every code in the catalogue -----------------------------------------------------

CATALOGUE = [
    ("pt1;1", "pt1", Category.PUNCH, {"athlete": "blue", "points": 1, "technique": "punch"}),
    ("pt2;2;", "pt2", Category.BODY, {"athlete": "red", "points": 2, "technique": "body"}),
    ("pt1;3", "pt1", Category.HEAD, {"athlete": "blue", "points": 3, "technique": "head"}),
    ("pt2;4", "pt2", Category.BODY, {"athlete": "red", "points": 4, "technique": "turning_body"}),
    ("pt1;5", "pt1", Category.TURNING_HEAD, {"athlete": "blue", "points": 5, "technique": "turning_head"}),
    ("hl1;100;", "hl1", Category.HIT_LEVEL, {"athlete": "blue", "level": 100}),
    ("hl2;99", "hl2", Category.HIT_LEVEL, {"athlete": "red", "level": 99}),
    ("wg1;1;wg2;2;", "wg1", Category.REFEREE, {"blue_warnings": 1, "red_warnings": 2}),
    ("ij0;01:00;show", "ij0", Category.REFEREE, {"time": "01:00", "seconds": 60, "action": "show", "athlete": None}),
    ("ij1;1:22;", "ij1", Category.REFEREE, {"time": "1:22", "seconds": 82, "action": None, "athlete": "blue"}),
    ("ij2;0:44;hide;", "ij2", Category.REFEREE, {"time": "0:44", "seconds": 44, "action": "hide", "athlete": "red"}),
    ("wrd;rd1;2;rd2;1;rd3;0", "wrd", Category.REFEREE,
     {"round_winners": {"1": "red", "2": "blue", "3": None}, "blue_rounds": 1, "red_rounds": 1}),
    ("wrd;rd1;1;rd2;2;rd3;1;rd4;1", "wrd", Category.REFEREE,
     {"round_winners": {"1": "blue", "2": "red", "3": "blue", "4": "blue"}, "blue_rounds": 3, "red_rounds": 1}),
    ("wmh;Nicolas DESMOND", "wmh", Category.REFEREE,
     {"winner_name": "Nicolas DESMOND", "blue_rounds": None, "red_rounds": None, "decision": None}),
    ("wmh;Damjan Mitrić;0-1 SUP", "wmh", Category.REFEREE,
     {"winner_name": "Damjan Mitrić", "blue_rounds": 0, "red_rounds": 1, "decision": "SUP"}),
    ("wmh;;0-0 WDR", "wmh", Category.REFEREE, {"winner_name": "", "blue_rounds": 0, "red_rounds": 0, "decision": "WDR"}),
    ("win;BLUE;", "win", Category.REFEREE, {"winner": "blue"}),
    ("win;RED", "win", Category.REFEREE, {"winner": "red"}),
    ("win;TIE", "win", Category.REFEREE, {"winner": "tie"}),
    ("at1;N. DESMOND;Nicolas DESMOND;MRN;at2;M. THIBAULT;Marcel THIBAULT;SUI;", "at1", Category.OTHER,
     {"blue_short": "N. DESMOND", "blue_name": "Nicolas DESMOND", "blue_noc": "MRN",
      "red_short": "M. THIBAULT", "red_name": "Marcel THIBAULT", "red_noc": "SUI"}),
    ("s11;1;s21;2;s12;3;s22;4;s13;5;s23;6", "s11", Category.OTHER,
     {"blue_round_scores": {"1": 1, "2": 3, "3": 5}, "red_round_scores": {"1": 2, "2": 4, "3": 6}}),
    ("s23;0;", "s23", Category.OTHER, {"blue_round_scores": {}, "red_round_scores": {"3": 0}}),
    ("sc1;0;sc2;0;", "sc1", Category.OTHER, {"blue_score": 0, "red_score": 0}),
    ("avt;0;", "avt", Category.OTHER, {"value": 0}),
    ("rnd;3;", "rnd", Category.REFEREE, {"round": 3}),
    ("rdy;FightReady;", "rdy", Category.OTHER, {}),
    ("pre;FightLoaded", "pre", Category.OTHER, {}),
    ("sup;2", "sup", Category.OTHER, {"leader": "red"}),
    ("sup;0", "sup", Category.OTHER, {"leader": None}),
    ("rsr;", "rsr", Category.OTHER, {}),
    ("hel;", "hel", Category.OTHER, {}),
    ("bye;", "bye", Category.OTHER, {}),
    ("inlb;200:", "inlb", Category.OTHER, {"value": 200}),
    ("insl;true:", "insl", Category.OTHER, {"value": True}),
    ("inth;1500:", "inth", Category.OTHER, {"value": 1500}),
    ("to1;", "to1", Category.OTHER, {"time": None, "seconds": None, "action": None, "athlete": "blue"}),
    ("to2;0:30;start", "to2", Category.OTHER, {"time": "0:30", "seconds": 30, "action": "start", "athlete": "red"}),
    ("hwt;3", "hwt", Category.OTHER, {"test": "blue_head"}),
    ("Udp Port 8888 connected;", "udp", Category.OTHER, {"port": 8888, "connected": True}),
    ("Udp Port 6000 disconnected;", "udp", Category.OTHER, {"port": 6000, "connected": False}),
]


@pytest.mark.parametrize(("line", "code", "category", "fields"), CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_catalogue(line: str, code: str, category: Category, fields: dict) -> None:
    event = one(line)
    assert event.valid, event.error
    assert (event.code, event.category, event.fields) == (code, category, fields)
    assert event.raw == line


def test_referees_gen2_form() -> None:
    event = one("ref;Ivana Horvat;CRO;ju1;Peter Novak;SLO;ju3;Kenji Sato;JPN")
    assert event.valid
    officials = event.fields["officials"]
    assert officials["referee"] == {"name": "Ivana Horvat", "noc": "CRO"}
    assert officials["ju3"] == {"name": "Kenji Sato", "noc": "JPN"}


def test_round_stats() -> None:
    event = one("rst;2;st1;0;6;0;0;0;0;st2;3;2;0;0;0;1;")
    assert event.valid
    assert event.fields["round"] == 2
    assert event.fields["blue_stats"]["head"] == 6
    assert event.fields["red_stats"] == {
        "body": 3, "head": 2, "punch": 0, "turning_body": 0, "turning_head": 0, "gam_jeom": 1,
    }


@pytest.mark.parametrize(
    "line",
    ["pt1;6", "pt1;x", "hl1;101", "wg1;1;wg1;2", "ch1;2", "ch1;1;5", "wrd;rd1;3", "wrd;rd1", "win;GREEN",
     "wmh;X;two-one", "wmh;X;2-1 XYZ", "at1;a;b;c", "mch;;Final;M", "rnd;0", "rdy;Loaded", "rsr;1",
     "sup;3", "hwt;9", "insl;maybe:", "rst;1;st1;0;0"],
)
def test_malformed_fields_are_flagged(line: str) -> None:
    event = one(line)
    assert not event.valid
    assert event.error
    assert event.raw == line
    assert event.fields == {}


# --- the real capture ---------------------------------------------------------------------


def test_every_sample_line_parses_valid() -> None:
    rows = [r for r in SAMPLE.read_text(encoding="utf-8").splitlines() if r and not r.startswith("#")]
    assert len(rows) > 2800
    bad = []
    for row in rows:
        _, _, line = row.split("\t", 2)
        events = parse_datagram(line.encode())
        if len(events) != 1 or not events[0].valid:
            bad.append((line, [e.error for e in events]))
    assert bad == []


# --- totality ------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    events = parse_datagram(data)
    assert events
    for event in events:
        assert isinstance(event.raw, str)
        assert event.valid == (event.error is None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["pt1", "sc1", "sc2", "clk", "ch1", "wrd", "rd1", "mch", "wmh", "-1", "0:00",
                                 "02:00", "", " ", "x", "99", "stopEnd", "\r\n", "'", "ć"]), max_size=12))
def test_protocol_like_text_never_raises(tokens: list[str]) -> None:
    line = ";".join(tokens)
    event = parse_line(line)
    assert isinstance(event.raw, str)
    assert event.valid or event.error


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("sc1;0;", {"blue_score": 0}),  # the spec lists each side on its own
        ("sc2; 4", {"red_score": 4}),
        ("wg2;1", {"red_warnings": 1}),
        ("wg2;1;wg1;0", {"blue_warnings": 0, "red_warnings": 1}),
    ],
)
def test_score_and_warnings_may_come_one_side_at_a_time(line: str, fields: dict) -> None:
    event = parse_line(line)
    assert event.valid and event.fields == fields


def test_the_category_legend_names_each_of_the_seven_once() -> None:
    entries = Category.legend().split(", ")
    assert [entry.split(" ", 1)[0] for entry in entries] == [category.value for category in Category]
    assert "TB body" in entries and "R referee" in entries and len(entries) == 7
