"""The MediaPipe face and hand models, read from the ``mediapipe`` wheel and run with LiteRT.

``gaia`` never imports ``mediapipe`` (it does not import beside protobuf 7 and numpy 2): the
wheel is installed with ``--no-deps`` and only its ``.tflite`` files are read
(``model_files``). The decoding around them is ours: SSD anchors (``anchors``), rotated crops
(``crop``), BlazeFace detection (``blazeface``), the 468-point face mesh and its mapping to the
68 iBUG points (``face_mesh``, ``mesh68``), and palm plus hand landmarks (``hands``).
"""
