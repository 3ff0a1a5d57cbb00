"""terminal/audio.py: the tone, the microphone's gaps filled with silence, the speaker's mixer."""

from __future__ import annotations

import asyncio

import numpy as np
from av import AudioFrame

from terminal.audio import (
    SAMPLES,
    AudioMixer,
    MicrophoneTrack,
    ToneTrack,
    device_candidates,
    open_microphone,
)


async def test_tone_is_20_ms_of_48_khz_mono() -> None:
    track = ToneTrack()
    first, second = await track.recv(), await track.recv()
    assert (first.sample_rate, first.samples, first.layout.name) == (48000, SAMPLES, "mono")
    assert second.pts == SAMPLES and np.abs(first.to_ndarray()).max() > 1000


async def test_microphone_track_fills_gaps_with_silence() -> None:
    track = MicrophoneTrack()
    track.feed(np.full((1, SAMPLES), 1000, np.int16))
    spoken = await track.recv()
    assert spoken.to_ndarray().max() == 1000
    silent = await asyncio.wait_for(track.recv(), 1.0)  # nothing fed: silence, not a stall
    assert silent.to_ndarray().max() == 0 and silent.pts == SAMPLES


def test_device_settings() -> None:
    assert device_candidates("none") == []
    assert device_candidates("alsa:hw:1,0") == [("alsa", "hw:1,0")]
    assert all(device == "default" for _, device in device_candidates("auto"))


async def test_no_microphone_means_no_audio_track() -> None:
    assert await open_microphone("none") is None
    assert await open_microphone("alsa:tingshen-no-such-device") is None


def test_mixer_adds_sources_and_clips() -> None:
    mixer = AudioMixer()
    for key, level in (("judge", 20000), ("clerk", 20000)):
        frame = AudioFrame.from_ndarray(
            np.full((1, SAMPLES), level, np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 48000
        mixer.push(key, frame)
    mixed = mixer.pop()
    assert mixed.shape == (SAMPLES * 2,) and mixed.max() == 32767  # stereo, clipped
    assert mixer.pop().max() == 0  # nothing queued: silence
    mixer.forget("judge")
