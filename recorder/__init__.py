"""Evidence-grade recording: per-track WebM segments, a signed hash-chain manifest, verification
and crash recovery. Fed encoded frames by the server; knows nothing of aiohttp or WebSockets.

Entry points: :class:`recorder.session.RecordingSession`, :class:`recorder.track.TrackInfo`,
:class:`recorder.manifest.ManifestSigner`, :func:`recorder.verify.verify_recording`,
:func:`recorder.recovery.recover_recording`.
"""
