"""A stand-in clock for fmrobot/llm/retry.py: waiting advances it, no real time passes."""

from __future__ import annotations


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def install_fake_time(monkeypatch) -> FakeTime:
    """retry's clock and sleep replaced for one test (the conftests' `fake_time` fixture)."""
    from fmrobot.llm import retry

    fake = FakeTime()
    monkeypatch.setattr(retry, "_clock", fake.clock)
    monkeypatch.setattr(retry, "_sleep", fake.sleep)
    return fake
