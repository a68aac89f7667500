"""Text encoders for instruction-driven generation (paper, appendix E; docs/weights.md).

Appendix E swaps the diffusion model's speech features for a pre-trained CLIP text encoder's
representation of an instruction ("please smile", "turn your head left"). Nothing heavy is
imported here; import the submodules:

- ``gaia.text.clip_text``: ``load_text_encoder(folder, device=None, allow_untrained=False)``
  reads a ``transformers`` CLIP text model and its tokenizer from a local folder (never
  downloads) and returns a ``TextEncoder``: texts -> ``(N, E)`` float32 pooled embeddings,
  with its ``provenance``; ``write_tiny_text_encoder(folder, seed=0)`` writes a small RANDOM
  CLIP text model with CLIP's real vocabulary, for tests and the demo
  (``gaia samples text-encoder DIR``).
- ``gaia.text.clip_vocab``: CLIP's BPE vocabulary (``vocab.json``, ``merges.txt``) built from
  the merges file inside the ``open_clip_torch`` wheel, which is read and never imported.
"""
