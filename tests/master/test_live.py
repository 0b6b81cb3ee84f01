"""The master's in-memory match per court, record by record (the real-process scenarios are in test_live_courts)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from master.live import PENDING_LIMIT, CourtMatch, LiveMatches
from shared.match_snapshot import MatchSnapshot, Tally
from shared.match_state import MatchState, MatchStatus
from shared.pss.parser import parse_line
from shared.pss.simulator import simulate_match
from shared.records import EventRecord
from shared.wire import Heartbeat

NODE = "court-1"
LINES = [line for _, line in simulate_match(7).lines]


def records(lines: list[str], epoch: str = "e1", first_seq: int = 1) -> list[EventRecord]:
    out = []
    for seq, line in enumerate(lines, start=first_seq):
        event = parse_line(line)
        out.append(EventRecord(node_id=NODE, epoch=epoch, seq=seq, received_ms=seq, raw=line,
                               raw_datagram=line.encode(), code=event.code, event_category=event.category.value,
                               parsed=event.fields, valid=event.valid, error=event.error))
    return out


def folded(lines: list[str]) -> MatchState:
    state = MatchState()
    for line in lines:
        state.fold(parse_line(line))
    return state


def heartbeat(snapshot: MatchSnapshot | None, epoch: str = "e1") -> Heartbeat:
    return Heartbeat(node_id=NODE, court="Court 1", hostname="h", version="0", epoch=epoch,
                     last_seq=snapshot.seq if snapshot else 0, sent_ms=0, pub_port=1, router_port=2, match=snapshot)


def court(live: LiveMatches) -> CourtMatch:
    found = live.get(NODE)
    assert found is not None
    return found


def test_events_in_order_give_the_court_state() -> None:
    live = LiveMatches()
    live.on_heartbeat(heartbeat(MatchSnapshot()))
    for record in records(LINES):
        live.on_records(NODE, [record])
    assert court(live).state == folded(LINES)
    assert court(live).snapshot() == MatchSnapshot.of(folded(LINES), len(LINES))
    assert court(live).court == "Court 1"


def test_answers_to_pull_requests_fold_as_the_court_folds_them() -> None:
    """A restarted court's resync answers: the previous match's result must not end this one."""
    live = LiveMatches()
    live.on_heartbeat(heartbeat(MatchSnapshot()))
    answers = [
        "mch;102;Final;M -68kg;0;#0000ff;#FFFFFF;#ff0000;#FFFFFF;null;Seniors;3;120;cntDown;20;5;",
        "at1;A;A;KOR;at2;B;B;JPN", "rnd;2", "sc1;3;sc2;1", "clk;01:10", "wrd;rd1;1;rd2;1;rd3;0", "wmh;C;2-0 PTF",
    ]
    live.on_records(NODE, [r.model_copy(update={"resync": True}) for r in records(answers)])
    state = court(live).state
    assert (state.match_number, state.round, state.score, state.status) == ("102", 2, (3, 1), MatchStatus.RUNNING)
    assert state.round_winners == {} and not state.is_finished


def test_a_new_database_starts_from_its_first_event_without_a_snapshot() -> None:
    live = LiveMatches()
    live.on_records(NODE, records(LINES[:50]))
    live.on_records(NODE, records(LINES[:10], epoch="e2"))  # the court's file was replaced
    assert (court(live).epoch, court(live).seq) == ("e2", 10)
    assert court(live).state == folded(LINES[:10])


def test_out_of_order_events_wait_for_the_missing_one() -> None:
    live = LiveMatches()
    recs = records(LINES)
    live.on_records(NODE, recs[:100])
    live.on_records(NODE, recs[103:150])  # 101-103 lost on PUB: parked
    assert court(live).seq == 100
    live.on_records(NODE, recs[100:103])  # the catch-up page brings them
    assert court(live).seq == 150
    assert court(live).state == folded(LINES[:150])


def test_a_heartbeat_ahead_takes_over_and_later_events_fold_on_top() -> None:
    """The master started mid-match: the snapshot at S, then S+1..."""
    live = LiveMatches()
    recs = records(LINES)
    live.on_records(NODE, recs[150:160])  # live events before the first heartbeat: parked
    live.on_heartbeat(heartbeat(MatchSnapshot.of(folded(LINES[:155]), 155)))
    assert court(live).seq == 160  # 156-160 came out of the parking
    live.on_records(NODE, recs[100:200])  # a catch-up page of old and new events
    assert court(live).seq == 200
    assert court(live).state == folded(LINES[:200])


def test_a_heartbeat_behind_or_equal_changes_nothing() -> None:
    live = LiveMatches()
    live.on_records(NODE, records(LINES[:120]))
    live.on_heartbeat(heartbeat(None))  # the court's name: a change of its own (tested below)
    version = court(live).version
    live.on_heartbeat(heartbeat(MatchSnapshot.of(folded(LINES[:100]), 100)))
    live.on_heartbeat(heartbeat(MatchSnapshot(seq=120)))  # a restarted court's empty state: ours knows more
    assert court(live).version == version
    assert court(live).state == folded(LINES[:120])


def test_a_heartbeat_of_another_epoch_replaces_the_state() -> None:
    live = LiveMatches()
    live.on_records(NODE, records(LINES[:120]))
    live.on_heartbeat(heartbeat(MatchSnapshot(seq=0), epoch="e2"))
    assert (court(live).epoch, court(live).seq) == ("e2", 0)
    assert court(live).snapshot().status is MatchStatus.IDLE


def test_too_many_parked_events_are_dropped_and_the_next_heartbeat_resyncs() -> None:
    live = LiveMatches()
    far = records(["sc1;1;sc2;0"] * (PENDING_LIMIT + 10), first_seq=10)
    live.on_records(NODE, far)
    assert len(court(live)._pending) <= PENDING_LIMIT
    state = folded(LINES[:40])
    live.on_heartbeat(heartbeat(MatchSnapshot.of(state, 10 + PENDING_LIMIT + 9)))
    assert court(live).state == state


def test_an_event_that_does_not_fit_is_logged_and_the_next_snapshot_repairs(caplog: pytest.LogCaptureFixture) -> None:
    live = LiveMatches()
    good = records(LINES[:30])
    broken = good[29].model_copy(update={"code": "rnd", "parsed": {"unexpected": True}, "valid": True})
    live.on_records(NODE, good[:29])
    with caplog.at_level(logging.WARNING, "master.live"):
        live.on_records(NODE, [broken])
    assert "does not fit the match state" in caplog.text
    assert court(live).seq == 30 and court(live).fold_errors == 1
    live.on_heartbeat(heartbeat(MatchSnapshot.of(folded(LINES[:30]), 30)))  # same seq, but ours is in doubt
    assert court(live).state == folded(LINES[:30])


def test_listeners_hear_each_change_once_and_can_leave() -> None:
    live = LiveMatches()
    heard_all: list[tuple[str, int]] = []
    heard_one: list[Tally] = []
    stop_all = live.subscribe(lambda c: heard_all.append((c.node_id, c.version)))
    live.subscribe(lambda c: heard_one.append(c.snapshot().score), node_id=NODE)
    live.subscribe(lambda c: heard_one.append(Tally()), node_id="court-2")
    live.on_records(NODE, records(["pre;FightLoaded", "rdy;FightReady", "sc1;2;sc2;0"]))  # one message: one call
    live.on_records(NODE, records(["hl1;40"], first_seq=4))  # no match change: no call
    stop_all()
    live.on_records(NODE, records(["sc1;2;sc2;3"], first_seq=5))
    assert heard_all == [(NODE, 1)]
    assert heard_one == [Tally(blue=2, red=0), Tally(blue=2, red=3)]


def test_a_court_first_heard_after_its_events_is_a_change() -> None:
    """Its events folded before its first heartbeat (the link knew its node id): readers learn its name then."""
    live = LiveMatches()
    live.on_records(NODE, records(["pre;FightLoaded", "sc1;2;sc2;0"]))
    heard: list[str | None] = []
    live.subscribe(lambda c: heard.append(c.court))
    live.on_heartbeat(heartbeat(MatchSnapshot.of(folded(["pre;FightLoaded", "sc1;2;sc2;0"]), 2)))
    live.on_heartbeat(heartbeat(MatchSnapshot.of(folded(["pre;FightLoaded", "sc1;2;sc2;0"]), 2)))  # nothing new
    assert heard == ["Court 1"]


def test_a_failing_listener_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    live = LiveMatches()
    heard: list[int] = []

    def broken(c: CourtMatch) -> None:
        raise RuntimeError("page bug")

    live.subscribe(broken)
    live.subscribe(lambda c: heard.append(c.seq))
    with caplog.at_level(logging.WARNING, "master.live"):
        live.on_records(NODE, records(["pre;FightLoaded"]))
    assert heard == [1]
    assert "A match listener failed" in caplog.text


@pytest.mark.timeout(20)  # a woken waiter's event left set would make the next wait spin on the loop for ever
def test_async_waiters_wake_on_change() -> None:
    async def main() -> None:
        live = LiveMatches()
        live.on_records(NODE, records(["pre;FightLoaded"]))
        c = court(live)
        seen = c.version
        waiter = asyncio.create_task(c.async_changed(seen))
        await asyncio.sleep(0)
        assert not waiter.done()
        live.on_records(NODE, records(["sc1;1;sc2;0"], first_seq=2))
        assert await asyncio.wait_for(waiter, 1) == seen + 1
        assert c.snapshot().score == Tally(blue=1, red=0)
        with pytest.raises(TimeoutError):  # the next wait waits for the next change
            await asyncio.wait_for(c.async_changed(seen + 1), 0.1)

    asyncio.run(main())
