"""Instructions from timed text (paper, appendix E): which cues are instructions
(``select``), the rules of the ``instruct`` preset (``rules``), and the action clip each
instruction gives (``actions``), decided inside ``gaia.filters.funnel.decide_video``."""
