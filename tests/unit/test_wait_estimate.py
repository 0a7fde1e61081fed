"""The waiting estimate's model (consultations/wait_estimate.py): zero when a matching
advisor is idle; otherwise played forward from the handle times of the advisors who could
take the shopper."""

from __future__ import annotations

import random
import uuid
from typing import Any

from livedesk.consultations.wait_estimate import Desk, Waiter, estimate
from livedesk.models import ConsultationKind

VIDEO, CHAT = ConsultationKind.VIDEO, ConsultationKind.CHAT


def _ids(n: int) -> list[uuid.UUID]:
    return sorted(uuid.uuid4() for _ in range(n))


def test_first_in_line_waits_zero_when_her_advisor_is_idle() -> None:
    # The issue: an idle advisor with a slow history, and the first shopper was told 19 min.
    [advisor] = _ids(1)
    [c] = _ids(1)
    got = estimate([Waiter(c, VIDEO, nominated=advisor)], [Desk(advisor, handle_seconds=19 * 60)], 3)
    assert got[c].seconds == 0
    assert got[c].advisors == 1


def test_an_idle_advisor_serves_the_first_the_second_waits_for_the_first_to_free() -> None:
    [advisor] = _ids(1)
    first, second = _ids(2)
    got = estimate([Waiter(first, VIDEO), Waiter(second, VIDEO)], [Desk(advisor, handle_seconds=300)], 3)
    assert (got[first].seconds, got[second].seconds) == (0, 300)


def test_a_busy_advisor_frees_after_what_is_left_of_her_typical_call() -> None:
    [advisor] = _ids(1)
    [c] = _ids(1)
    got = estimate([Waiter(c, VIDEO)], [Desk(advisor, handle_seconds=600, call_elapsed=200)], 3)
    assert got[c].seconds == 400
    # A call already longer than typical still has a quarter of a typical one to go.
    late = estimate([Waiter(c, VIDEO)], [Desk(advisor, handle_seconds=600, call_elapsed=900)], 3)
    assert late[c].seconds == 150


def test_estimates_use_the_pace_of_the_advisors_who_match() -> None:
    quick, slow = _ids(2)
    first, second = _ids(2)
    desks = [Desk(quick, handle_seconds=120, call_elapsed=0), Desk(slow, handle_seconds=1200, call_elapsed=0)]
    # Waiting for the slow advisor only: her pace, not the quick one's.
    got = estimate([Waiter(first, VIDEO, nominated=slow, wait_for_nominated=True)], desks, 3)
    assert got[first].seconds == 1200
    assert got[first].advisors == 1
    # Anyone will do: the quick advisor frees first, twice, before the slow one.
    anyone = estimate([Waiter(first, VIDEO), Waiter(second, VIDEO)], desks, 3)
    assert (anyone[first].seconds, anyone[second].seconds) == (120, 240)
    assert anyone[first].advisors == 2


def test_an_advisor_who_passed_on_it_does_not_count() -> None:
    idle, busy = _ids(2)
    [c] = _ids(1)
    desks = [Desk(idle, handle_seconds=300), Desk(busy, handle_seconds=300, call_elapsed=100)]
    got = estimate([Waiter(c, VIDEO, passed_over=frozenset({idle}))], desks, 3)
    assert (got[c].seconds, got[c].advisors) == (200, 1)


def test_chats_share_an_advisor_up_to_the_limit() -> None:
    [advisor] = _ids(1)
    waiters = [Waiter(c, CHAT) for c in _ids(3)]
    desk = Desk(advisor, handle_seconds=600, chats_elapsed=(0.0,))
    got = estimate(waiters, [desk], 3)
    # Two free chat slots: two shoppers now, the third when her first chat likely ends.
    assert [got[w.consultation_id].seconds for w in waiters] == [0, 0, 600]
    # In a call, she takes no chat until it ends.
    in_call = estimate(waiters[:1], [Desk(advisor, handle_seconds=600, call_elapsed=400)], 3)
    assert in_call[waiters[0].consultation_id].seconds == 200


def test_an_offer_in_hand_is_zero_and_holds_its_advisor() -> None:
    [advisor] = _ids(1)
    offered, next_one = _ids(2)
    waiters = [Waiter(next_one, VIDEO), Waiter(offered, VIDEO, offered_to=advisor)]
    got = estimate(waiters, [Desk(advisor, handle_seconds=300)], 3)
    assert (got[offered].seconds, got[next_one].seconds) == (0, 300)


def test_nobody_who_could_take_her_is_online() -> None:
    [c] = _ids(1)
    assert estimate([Waiter(c, VIDEO)], [], 3)[c].seconds is None
    [other] = _ids(1)
    waiting_for = Waiter(c, VIDEO, nominated=uuid.uuid4(), wait_for_nominated=True)
    got = estimate([waiting_for], [Desk(other, handle_seconds=60)], 3)
    assert (got[c].seconds, got[c].advisors) == (None, 0)


def _reference(waiters: list[Waiter], desks: list[Desk], max_chats: int) -> dict[uuid.UUID, Any]:
    """The plain scan over every desk for every waiter (what ``estimate`` computed before the
    heaps): the heaps must give the very same answers."""
    from livedesk.consultations.wait_estimate import Estimate, _desk_state

    free = {d.staff_id: _desk_state(d, max_chats) for d in desks}
    order = sorted(free)
    out: dict[uuid.UUID, Any] = {}
    for w in waiters:
        if w.offered_to is not None:
            out[w.consultation_id] = Estimate(0, sum(1 for s in order if w.may_go_to(s) or s == w.offered_to))
            if w.offered_to in free:
                free[w.offered_to].take(w.kind, 0.0)
    for w in waiters:
        if w.offered_to is not None:
            continue
        reach = [s for s in order if w.may_go_to(s)]
        if not reach:
            out[w.consultation_id] = Estimate(None, 0)
            continue
        best = min(reach, key=lambda s: free[s].start(w.kind))
        at = free[best].start(w.kind)
        free[best].take(w.kind, at)
        out[w.consultation_id] = Estimate(round(at), len(reach))
    return out


def test_the_heaps_answer_as_the_plain_scan_does() -> None:
    rng = random.Random(22)
    kinds = list(ConsultationKind)
    for _ in range(300):
        staff = [uuid.uuid4() for _ in range(rng.randint(0, 8))]
        desks = [
            Desk(
                staff_id=s,
                handle_seconds=rng.choice([60.0, 120.0, 300.0]),
                call_elapsed=rng.choice([None, 30.0, 400.0]),
                chats_elapsed=tuple(rng.choice([10.0, 200.0]) for _ in range(rng.randint(0, 3))),
            )
            for s in staff
        ]
        waiters = []
        for _ in range(rng.randint(0, 25)):
            nominated = rng.choice([None, *staff]) if staff else None
            waiters.append(
                Waiter(
                    consultation_id=uuid.uuid4(),
                    kind=rng.choice(kinds),
                    offered_to=rng.choice(staff) if staff and rng.random() < 0.1 else None,
                    nominated=nominated,
                    wait_for_nominated=nominated is not None and rng.random() < 0.3,
                    passed_over=frozenset(s for s in staff if rng.random() < 0.1),
                )
            )
        max_chats = rng.randint(1, 3)
        assert estimate(waiters, desks, max_chats) == _reference(waiters, desks, max_chats)
