"""The advisor list shoppers pick from: nominable, active advisors only, live status, and no
private fields."""

from __future__ import annotations

from typing import Any

from livedesk.models import Role


async def test_public_advisor_list(live: Any, make_staff: Any) -> None:
    online = await make_staff(Role.ADVISOR, display_name="Aiko", skills=["skincare"], languages=["ja", "en"])
    await make_staff(Role.ADVISOR, display_name="Hidden", nominable=False)
    await make_staff(Role.ADVISOR, display_name="Gone", active=False)
    await make_staff(Role.SUPERVISOR, display_name="Boss")
    offline = await make_staff(Role.ADVISOR, display_name="Ben", extra={"bio_en": "Hello"})
    console = await live.staff(online)
    await console.wait_for("presence.changed", lambda p: p["status"] == "available")

    response = await live.http.get("/api/v1/advisors")
    assert response.status == 200
    cards = (await response.json())["advisors"]
    assert [c["display_name"] for c in cards] == ["Aiko", "Ben"]
    by_name = {c["display_name"]: c for c in cards}
    assert by_name["Aiko"]["status"] == "available"
    assert by_name["Aiko"]["skills"] == ["skincare"]
    assert by_name["Ben"]["status"] == "offline"
    assert by_name["Ben"]["bio_en"] == "Hello"
    assert by_name["Ben"]["id"] == str(offline.id)
    for card in cards:
        assert set(card) == {
            "id",
            "display_name",
            "display_name_en",
            "photo_url",
            "bio",
            "bio_en",
            "skills",
            "languages",
            "status",
        }
