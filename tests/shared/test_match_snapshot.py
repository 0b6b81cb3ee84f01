"""MatchSnapshot: complete (a state survives the round trip), wire-ready, and foldable from stored records."""

from __future__ import annotations

import json

import msgpack
import pytest

from shared.match_snapshot import MatchSnapshot, RoundSnapshot, Tally
from shared.match_state import MatchState, MatchStatus
from shared.pss.parser import parse_line
from shared.pss.simulator import simulate_session
from shared.wire import WIRE_VERSION, Heartbeat, WireError, decode, encode
from tests.support import sample_lines


def heartbeat(match: MatchSnapshot | None) -> Heartbeat:
    return Heartbeat(node_id="court-1", court="Court 1", hostname="h", version="0", epoch="e1",
                     last_seq=match.seq if match else 0, sent_ms=0, pub_port=1, router_port=2, match=match)


def test_every_state_of_the_real_capture_survives_snapshot_and_wire() -> None:
    """After each of the capture's events, state -> snapshot -> msgpack heartbeat -> state is the same state."""
    state = MatchState()
    seen_statuses = set()
    for seq, (_, line) in enumerate(sample_lines(), start=1):
        state.fold(parse_line(line))
        snapshot = MatchSnapshot.of(state, seq)
        assert snapshot.to_state() == state, f"after line {seq}: {line!r}"
        if seq % 50 == 0 or (state.status is not MatchStatus.IDLE and state.status not in seen_statuses):
            received = decode(encode(heartbeat(snapshot)))
            assert isinstance(received, Heartbeat) and received.match == snapshot
            assert received.match.to_state() == state
        seen_statuses.add(state.status)
    assert {MatchStatus.FINISHED, MatchStatus.RUNNING, MatchStatus.BREAK} <= seen_statuses


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_sessions_survive_the_round_trip(seed: int) -> None:
    """Challenges, injuries, breaks and results of simulated matches, both sender generations."""
    state = MatchState()
    for seq, (_, line) in enumerate(simulate_session(seed, matches=3).lines, start=1):
        state.fold(parse_line(line))
        assert MatchSnapshot.of(state, seq).to_state() == state


def test_folding_stored_records_equals_folding_parsed_events() -> None:
    """The master folds ``(code, parsed)`` after JSON (SQLite, catch-up) or msgpack (live); same state."""
    direct, from_json, from_msgpack = MatchState(), MatchState(), MatchState()
    for _, line in [*sample_lines(), *simulate_session(5, matches=2).lines]:
        event = parse_line(line)
        direct.fold(event)
        if event.valid:
            from_json.fold_fields(event.code, json.loads(json.dumps(event.fields)))
            from_msgpack.fold_fields(event.code, msgpack.unpackb(msgpack.packb(event.fields), strict_map_key=True))
    assert from_json == direct
    assert from_msgpack == direct


def test_snapshot_reads_like_the_scoreboard() -> None:
    state = MatchState()
    for line in ["pre;FightLoaded", "at1;Ana;Ana;CRO;at2;Bea;Bea;SRB", "mch;101;R16;F -57kg;0;;;;;null;Senior;3;120;",
                 "rdy;FightReady", "clk;02:00;start", "sc1;3;sc2;1", "s11;3;s21;1", "wg1;1;wg2;0",
                 "wrd;rd1;1;rd2;0;rd3;0"]:
        state.fold(parse_line(line))
    snapshot = MatchSnapshot.of(state, 9)
    assert snapshot.seq == 9
    assert snapshot.status is MatchStatus.RUNNING
    assert (snapshot.number, snapshot.blue.noc, snapshot.red.name) == ("101", "CRO", "Bea")
    assert snapshot.score == Tally(blue=3, red=1)
    assert snapshot.rounds == [RoundSnapshot(number=1, score=Tally(blue=3, red=1), warnings=Tally(blue=1, red=0),
                                             winner="blue")]
    assert snapshot.rounds_won == Tally(blue=1, red=0)


def test_unexpected_sender_values_do_not_make_a_heartbeat_invalid() -> None:
    """A decision or side the parser passes through must never get a court's heartbeat refused."""
    snapshot = MatchSnapshot(winner="purple", decision="XYZ", leader="nobody")
    received = decode(encode(heartbeat(snapshot)))
    assert isinstance(received, Heartbeat) and received.match == snapshot


def test_a_heartbeat_of_the_previous_version_is_refused_with_the_reason() -> None:
    """Version 2 carried the match as a free-form map."""
    old = heartbeat(None).model_dump(mode="python") | {"v": 2, "match": {"status": "idle", "score": {"blue": 0}}}
    with pytest.raises(WireError, match=f"unsupported wire version 2 .this build speaks {WIRE_VERSION}"):
        decode(msgpack.packb(old))
