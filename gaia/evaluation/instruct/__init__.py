"""``gaia eval instruct``: instruction following of the text-instructed model measured on
landmarks and head pose (paper, appendix E rates it by people only).

``protocol.py`` the protocol (videos against a neutral instruction, summaries, notes),
``measures.py`` the per-frame measures and curation's face stack over frames, ``cases.py`` the
instructions and their expected effects, ``report.py`` the page, ``cli.py`` the verb. Kept
free of heavy imports: the command line's parser reads ``NEUTRAL`` from here.
"""

NEUTRAL = "look at the camera"
