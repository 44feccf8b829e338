"""A browser in Python for the tests: ``rtrelay.rtc.RtcClient``, an aiortc peer that calls a
WebRTC endpoint as OpenAI's guide does (the probe and the bench use the same parts)."""

from __future__ import annotations

from rtrelay.rtc import CallRefused, RtcClient

__all__ = ["CallRefused", "RtcClient"]
