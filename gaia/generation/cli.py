"""``gaia generate``: a portrait and speech become a talking video; ``gaia reenact``: a
portrait moved by a driving video's face (thin: parse, call)."""

from __future__ import annotations

import argparse
from pathlib import Path

GENERATE_EPILOG = """\
--pose: predicted (from the speech, by the model's pose predictor), fixed:PITCH,YAW,ROLL
(degrees, e.g. fixed:0,15,0 turns the head to one side), or from:VIDEO (the head pose of the
face in a video, measured as curation measures it).

examples:
  gaia generate --image me.png --audio hello.wav --vae runs/vae --s2m runs/s2m \\
      --out me_talking.mp4
  gaia generate ... --pose fixed:0,0,0 --steps 100 --seed 7
  gaia generate ... --pose from:driving.mp4 --sampler sde --temperature 0.8

controllable generation (paper, section 5.4): a landmark model (`gaia train landmarks`) in
place of --s2m draws the 68 landmarks of every frame; --control holds some of them to a
track of yours, (T, 68, 2) or (68, 2) pixels of the VAE's image of the portrait crop (start
from OUT.portrait_landmarks.npy, which every generation writes):
  gaia generate --image me.png --audio hello.wav --vae runs/vae --landmarks runs/lmk \\
      --control closed_mouth.npy --control-points mouth --out me_held.mp4
--control-points: mouth (48-67), eyes (36-47), brows (17-26), jaw (0-16), nose (27-35), or
indexes and ranges, comma-separated (48,54,60-67).

text-instructed generation (paper, appendix E): an instruct model (`gaia train instruct`) in
place of --s2m, an instruction in place of --audio, the text encoder it was trained with, and
the video's length; the video is silent, its head pose predicted from the instruction:
  gaia generate --image me.png --text "turn your head to the left" --seconds 3 \
      --vae runs/vae --instruct runs/instruct --text-encoder models/clip-text --out left.mp4

--diffusion is --s2m's name before the model was named s2m, --speech-weights --wav2vec2's:
deprecated aliases, kept for one release.
"""


def add_generate_parser(commands: argparse._SubParsersAction) -> None:
    from gaia.common.deprecation import add_deprecated_alias
    from gaia.training.s2m.sampler_config import SamplerConfig

    defaults = SamplerConfig()
    generate = commands.add_parser(
        "generate", help="portrait + speech -> talking video (trained VAE and s2m model); "
                         "portrait + instruction with an instruct model",
        description="Crop the portrait's face as curation does, extract speech features with "
                    "the extractor recorded in the s2m checkpoint, sample motion latents, "
                    "decode the frames with the VAE and mux the speech. Writes OUT.mp4 and "
                    "OUT.json (pose track, seed, sampler, checkpoints).",
        epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    generate.add_argument("--image", required=True, type=Path, metavar="PORTRAIT",
                          help="portrait with one face (PNG, JPEG)")
    generate.add_argument("--audio", type=Path, metavar="SPEECH",
                          help="speech (wav, flac, mp3, m4a, or a video with sound); needed "
                               "by --s2m and --landmarks")
    generate.add_argument("--text", metavar="INSTRUCTION",
                          help="an instruction such as \"please smile\" (with --instruct)")
    generate.add_argument("--seconds", type=float, default=3.0,
                          help="length of an instructed video (default: %(default)s)")
    generate.add_argument("--text-encoder", metavar="DIR",
                          help="the CLIP text encoder folder the instruct model was trained "
                               "with")
    generate.add_argument("--vae", required=True, type=Path, metavar="CKPT_OR_RUN",
                          help="VAE checkpoint or run folder (the one the latents came from)")
    motion = generate.add_mutually_exclusive_group(required=True)
    s2m = motion.add_argument("--s2m", type=Path, metavar="CKPT_OR_RUN",
                              help="speech-to-motion checkpoint or run folder (`gaia train "
                                   "s2m`; its latest checkpoint)")
    add_deprecated_alias(motion, "--diffusion", s2m)
    motion.add_argument("--instruct", type=Path, metavar="CKPT_OR_RUN",
                        help="text-instructed motion checkpoint or run (`gaia train "
                             "instruct`), with --text in place of --audio")
    motion.add_argument("--landmarks", type=Path, metavar="CKPT_OR_RUN",
                        help="landmark diffusion checkpoint or run (`gaia train landmarks`), "
                             "in place of --s2m")
    generate.add_argument("--control", type=Path, metavar="TRACK.npy",
                          help="landmarks to hold fixed while the rest is drawn (needs "
                               "--landmarks; see below): real, finite pixels from -SIZE to "
                               "2*SIZE for the VAE's SIZE-pixel image")
    generate.add_argument("--control-points", default="mouth", metavar="POINTS",
                          help="which points of --control to hold (default: %(default)s)")
    generate.add_argument("--out", required=True, type=Path, metavar="OUT.mp4")
    generate.add_argument("--pose", default="predicted",
                          help="predicted | fixed:PITCH,YAW,ROLL | from:VIDEO "
                               "(default: %(default)s)")
    generate.add_argument("--steps", type=int, default=defaults.steps,
                          help="denoising steps (default: %(default)s)")
    generate.add_argument("--sampler", choices=("ode", "sde"), default=defaults.kind,
                          help="deterministic ODE or stochastic SDE (default: %(default)s)")
    generate.add_argument("--temperature", type=float, default=defaults.temperature,
                          help="noise scale; below 1 gives calmer motion (default: %(default)s)")
    generate.add_argument("--overlap", type=float, default=defaults.overlap,
                          help="share of a window that speech longer than the model's window "
                               "shares with the window before, continued from it; 0 draws "
                               "independent windows (default: %(default)s)")
    generate.add_argument("--seed", type=int, default=0, help="the same seed, the same video")
    wav2vec2 = generate.add_argument(
        "--wav2vec2", dest="speech_weights", default=None, metavar="DIR",
        help="local wav2vec 2.0 folder, when the model was trained on wav2vec2 features")
    add_deprecated_alias(generate, "--speech-weights", wav2vec2)
    generate.add_argument("--denoise-weights", default=None, metavar="PATH",
                          help="the denoiser model the training features were made with, when "
                               "they were denoised (the checkpoint says which; refused without)")
    generate.add_argument("--trust-pickled-weights", action="store_true",
                          help="allow a demucs .th denoiser (a pickle: only a file you trust)")
    generate.add_argument("--device", default=None, help="cpu or cuda (default: cuda if any)")
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    from gaia.generation.generate import GenerateConfig, generate
    from gaia.training.s2m.sampler_config import SamplerConfig

    if args.instruct is not None:
        if args.text is None or args.audio is not None:
            raise ValueError("--instruct draws motion from an instruction: give --text "
                             "\"...\" (and --seconds), not --audio")
    elif args.audio is None or args.text is not None:
        raise ValueError("--s2m and --landmarks draw motion from speech: give --audio SPEECH "
                         "(--text goes with an instruct model, --instruct)")
    config = GenerateConfig(
        pose=args.pose, seed=args.seed, speech_weights=args.speech_weights, device=args.device,
        control=args.control, control_points=args.control_points,
        denoise_weights=args.denoise_weights, trust_pickled_weights=args.trust_pickled_weights,
        sampler=SamplerConfig(kind=args.sampler, steps=args.steps, temperature=args.temperature,
                              overlap=args.overlap))
    if args.instruct is not None:
        from gaia.generation.instructed import generate_instructed

        generate_instructed(args.image, args.text, args.seconds, args.vae, args.instruct,
                            args.out, config, text_encoder=args.text_encoder)
        return 0
    generate(args.image, args.audio, args.vae, args.s2m, args.out, config,
             landmarks_path=args.landmarks)
    return 0


def add_reenact_parser(commands: argparse._SubParsersAction) -> None:
    reenact = commands.add_parser(
        "reenact", help="animate a portrait with a driving video's motion (trained VAE)",
        description="Crop the portrait's face as curation crops clips, follow the driving "
                    "video's face landmarks, and decode each frame with the VAE (appearance "
                    "from the portrait, motion from the driving frame); the mp4 keeps the "
                    "driving video's frame rate and audio.",
        epilog="example:\n  gaia reenact --source me.png --driving talk.mp4 --vae runs/vae "
               "--out me_talking.mp4", formatter_class=argparse.RawDescriptionHelpFormatter)
    reenact.add_argument("--source", required=True, type=Path, metavar="IMAGE",
                         help="portrait with one face (PNG, JPEG)")
    reenact.add_argument("--driving", required=True, type=Path, metavar="VIDEO",
                         help="video of a talking head")
    reenact.add_argument("--vae", required=True, type=Path, metavar="CKPT_OR_RUN",
                         help="a checkpoint file, or a run folder (its latest checkpoint)")
    reenact.add_argument("--out", required=True, type=Path, metavar="OUT.mp4")
    reenact.set_defaults(handler=_reenact)


def _reenact(args: argparse.Namespace) -> int:
    from gaia.generation.reenact import reenact

    reenact(args.source, args.driving, args.vae, args.out)
    return 0
