"""Writes web/staff/offer-ring.wav: the advisor console's offer chime (two soft bell tones,
0.7 s, 16 kHz mono). Generated rather than vendored, so it carries no licence; run again to
change it: python scripts/make_offer_ring.py"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 16_000
TONES = ((0.0, 880.0), (0.18, 1318.5))  # A5 then E6: start (s), frequency (Hz)
LENGTH = 0.7
TARGET = Path(__file__).resolve().parents[1] / "web" / "staff" / "offer-ring.wav"


def sample(t: float) -> float:
    value = 0.0
    for start, freq in TONES:
        if t >= start:
            age = t - start
            attack = min(1.0, age / 0.005)  # no click at the onset
            value += 0.35 * attack * math.exp(-age * 6.0) * math.sin(2 * math.pi * freq * age)
    fade = min(1.0, (LENGTH - t) / 0.05)  # no click at the end
    return value * fade


def main() -> None:
    frames = b"".join(
        struct.pack("<h", int(max(-1.0, min(1.0, sample(i / RATE))) * 32767)) for i in range(int(RATE * LENGTH))
    )
    with wave.open(str(TARGET), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames)


if __name__ == "__main__":
    main()
