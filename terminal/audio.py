"""The terminal's sound: the microphone (PyAV from ALSA or PulseAudio), a test tone, the speaker.

How this works: audio devices block, so each runs in its own thread. The :class:`Microphone` thread
reads the capture device with PyAV, resamples to 48 kHz mono 20 ms frames, and hands them to the
event loop (``call_soon_threadsafe``) for the current :class:`MicrophoneTrack`, keeping at most a few
frames queued: late sound is dropped rather than delayed. When the device fails it is reopened, and
the track fills the gap with silence so the stream never stalls.

The :class:`Speaker` plays the court: every received audio track pushes its decoded frames into an
:class:`AudioMixer` (one short queue per participant), and the speaker thread takes 20 ms from each,
adds them, and writes the sum to the output device, which paces the thread.

Detention-centre boxes differ: "auto" tries PulseAudio, then ALSA's "default"; "none" turns a
device off; "alsa:hw:1,0" or "pulse:alsa_input.usb..." names one.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import math
import threading
import time
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

logger = logging.getLogger(__name__)

__all__ = [
    "AudioMixer",
    "Microphone",
    "MicrophoneTrack",
    "Speaker",
    "ToneTrack",
    "device_candidates",
    "open_microphone",
    "open_speaker",
]

RATE = 48000
SAMPLES = 960  # 20 ms
MAX_QUEUED = 5  # 100 ms: beyond that the sound is late, and dropped
REOPEN_DELAY = 3.0


def device_candidates(setting: str) -> list[tuple[str, str]]:
    """(PyAV format, device) pairs to try for a `microphone` / `speaker` setting."""
    if setting == "none":
        return []
    if setting == "auto":
        available = av.formats_available
        return [(f, "default") for f in ("pulse", "alsa") if f in available]
    fmt, _, device = setting.partition(":")
    return [(fmt, device or "default")]


def _silence(samples: int = SAMPLES) -> np.ndarray:
    return np.zeros((1, samples), np.int16)


class ToneTrack(MediaStreamTrack):
    """``testsrc`` sound: a 440 Hz tone, 20 ms frames of 48 kHz mono, paced in real time."""

    kind = "audio"

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__()
        self.hz = hz
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> AudioFrame:
        """The next 20 ms of tone."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._samples / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(SAMPLES) + self._samples) / RATE
        pcm = (np.sin(2 * math.pi * self.hz * t) * 6000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, RATE)
        self._samples += SAMPLES
        return frame


class Microphone:
    """A capture device read by a thread; :meth:`track` gives an aiortc track of it."""

    def __init__(self, fmt: str, device: str) -> None:
        self.fmt = fmt
        self.device = device
        self.state = "starting"
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._target: tuple[asyncio.AbstractEventLoop, MicrophoneTrack] | None = None

    def __repr__(self) -> str:
        return f"<Microphone {self.fmt}:{self.device}>"

    def start(self) -> None:
        """Start the capture thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="Microphone", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop capturing (the thread ends after its current read)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def track(self) -> MicrophoneTrack:
        """A new track fed by this microphone (the previous one stops being fed)."""
        track = MicrophoneTrack()
        self._target = (asyncio.get_running_loop(), track)
        return track

    def _run(self) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE, frame_size=SAMPLES)
        while not self._stopped.is_set():
            try:
                container = av.open(self.device, format=self.fmt)
            except (OSError, av.FFmpegError) as exc:
                if self.state != "no microphone":
                    logger.warning("microphone %s:%s: %s", self.fmt, self.device, exc)
                self.state = "no microphone"
                self._stopped.wait(REOPEN_DELAY)
                continue
            self.state = "ok"
            logger.info("microphone %s:%s open", self.fmt, self.device)
            try:
                for frame in container.decode(audio=0):
                    for chunk in resampler.resample(frame):
                        self._deliver(chunk.to_ndarray())
                    if self._stopped.is_set():
                        break
            except (OSError, av.FFmpegError) as exc:
                logger.warning("microphone %s:%s lost: %s", self.fmt, self.device, exc)
                self.state = "microphone lost"
            finally:
                container.close()

    def _deliver(self, pcm: np.ndarray) -> None:
        target = self._target
        if target is None:
            return
        loop, track = target
        try:
            loop.call_soon_threadsafe(track.feed, pcm)
        except RuntimeError:
            self._target = None  # the loop is closed: the terminal is exiting


class MicrophoneTrack(MediaStreamTrack):
    """20 ms frames from a :class:`Microphone`, with silence where the device gave nothing."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: collections.deque[np.ndarray] = collections.deque(maxlen=MAX_QUEUED)
        self._ready = asyncio.Event()
        self._samples = 0
        self._start: float | None = None

    def feed(self, pcm: np.ndarray) -> None:
        """Called on the loop with one 20 ms chunk (mono ``int16``, shape (1, n))."""
        self._queue.append(pcm)
        self._ready.set()

    async def recv(self) -> AudioFrame:
        """The next captured 20 ms, or silence when the device is late."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        if not self._queue:
            self._ready.clear()
            # Wait for the device a little beyond the frame's due time, then send silence.
            due = self._start + self._samples / RATE + 0.06 - time.monotonic()
            try:
                await asyncio.wait_for(self._ready.wait(), max(0.0, due))
            except TimeoutError:
                pass
        pcm = self._queue.popleft() if self._queue else _silence()
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, RATE)
        self._samples += pcm.shape[1]
        return frame


async def open_microphone(setting: str) -> Microphone | None:
    """The first capture device of `setting` that opens, started; None when there is none."""
    for fmt, device in device_candidates(setting):
        try:
            container = await asyncio.to_thread(av.open, device, format=fmt)
        except (OSError, ValueError, av.FFmpegError) as exc:
            logger.info("microphone %s:%s not available: %s", fmt, device, exc)
            continue
        container.close()
        microphone = Microphone(fmt, device)
        microphone.start()
        return microphone
    if setting != "none":
        logger.warning("no microphone (%s): the court will not hear this terminal", setting)
    return None


class AudioMixer:
    """Short per-source queues of 20 ms stereo chunks, summed one chunk at a time."""

    def __init__(self, max_queued: int = MAX_QUEUED) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, collections.deque[np.ndarray]] = {}
        self._max = max_queued

    def push(self, key: str, frame: AudioFrame) -> None:
        """Queue a decoded frame of source `key` (any layout; played as 48 kHz stereo)."""
        raw: np.ndarray = frame.to_ndarray()
        channels = len(frame.layout.channels)
        # Planar frames are (channels, samples); packed ones (1, samples * channels) interleaved.
        pcm = raw.reshape(channels, -1).T.reshape(-1) if frame.format.is_planar else raw.reshape(-1)
        if channels == 1:
            pcm = np.repeat(pcm, 2)
        with self._lock:
            queue = self._queues.setdefault(key, collections.deque(maxlen=self._max))
            queue.append(pcm.astype(np.int32))

    def forget(self, key: str) -> None:
        """Drop a source that went away."""
        with self._lock:
            self._queues.pop(key, None)

    def pop(self, samples: int = SAMPLES) -> np.ndarray:
        """The next chunk: the sum of one queued chunk per source (interleaved stereo int16)."""
        mixed = np.zeros(samples * 2, np.int32)
        with self._lock:
            for queue in self._queues.values():
                if queue:
                    chunk = queue.popleft()
                    n = min(len(chunk), len(mixed))
                    mixed[:n] += chunk[:n]
        return np.clip(mixed, -32768, 32767).astype(np.int16)


class Speaker:
    """Plays an :class:`AudioMixer` on an output device (PyAV ``alsa``/``pulse`` muxer)."""

    def __init__(self, fmt: str, device: str, mixer: AudioMixer) -> None:
        self.fmt = fmt
        self.device = device
        self.mixer = mixer
        self.state = "starting"
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="Speaker", daemon=True)

    def start(self) -> None:
        """Start playing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop playing."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=3)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._play()
            except (OSError, av.FFmpegError) as exc:
                if self.state != "no speaker":
                    logger.warning("speaker %s:%s: %s", self.fmt, self.device, exc)
                self.state = "no speaker"
                self._stopped.wait(REOPEN_DELAY)

    def _play(self) -> None:
        output: Any = av.open(self.device, "w", format=self.fmt)
        try:
            stream = output.add_stream("pcm_s16le", rate=RATE, layout="stereo")
            self.state = "ok"
            pts = 0
            while not self._stopped.is_set():
                pcm = self.mixer.pop().reshape(1, -1)
                frame = AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
                frame.sample_rate = RATE
                frame.pts = pts
                pts += SAMPLES
                # The device write blocks for about one frame: that is the pacing.
                for packet in stream.encode(frame):
                    output.mux(packet)
        finally:
            output.close()


def open_speaker(setting: str, mixer: AudioMixer) -> Speaker | None:
    """A started speaker for `setting`, or None ("none", or no output format in this FFmpeg)."""
    candidates = device_candidates(setting)
    if not candidates:
        return None
    fmt, device = candidates[0]
    if fmt not in av.formats_available:
        logger.warning("speaker: FFmpeg has no %r output; the court is not played", fmt)
        return None
    speaker = Speaker(fmt, device, mixer)
    speaker.start()
    return speaker
