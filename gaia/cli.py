"""The ``gaia`` command: a thin dispatcher over the library's verbs.

An error a user can fix is one line, ``gaia: error: ...``, exit status 2 (a full disk and a
job that Ray ended included); any other exception is a bug, still one line, exit status 1.
``--debug`` (before or after the verb) adds the library's DEBUG lines and, after that line,
the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from gaia import __version__


def build_parser() -> argparse.ArgumentParser:
    from gaia.evaluation.cli import add_eval_parser
    from gaia.generation.cli import add_generate_parser, add_reenact_parser
    from gaia.pipeline.cli.curate import add_curate_parser
    from gaia.pipeline.cli.inspect import add_inspect_parser
    from gaia.pipeline.cli.latents import add_encode_latents_parser
    from gaia.samples.cli import add_sample_parser, add_samples_parser
    from gaia.training.cli import add_train_parser

    parser = argparse.ArgumentParser(
        prog="gaia",
        description="Curate talking-head video at scale and train GAIA talking-avatar models.",
    )
    parser.add_argument("--version", action="version", version=f"gaia {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_curate_parser(commands)
    add_inspect_parser(commands)
    add_sample_parser(commands)
    add_samples_parser(commands)
    add_train_parser(commands)
    add_eval_parser(commands, default_portraits=_shipped_portraits)
    add_reenact_parser(commands)
    add_encode_latents_parser(commands)
    add_generate_parser(commands)
    _debug_everywhere(parser)
    return parser


def _shipped_portraits(folder):
    """``gaia eval instruct``'s default portraits: ten real faces from the installed wheels
    (``samples.portraits``), written into ``folder`` when first needed."""
    from gaia.samples.portraits import write_portraits

    return write_portraits(folder)


DEBUG_HELP = "log DEBUG lines, and show an error's traceback after its one-line message"


def _debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on every verb too (``gaia curate measure ... --debug``), defaulting to
    absent there so that ``gaia --debug VERB`` still counts."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--debug" not in sub._option_string_actions:
                    sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                     help=DEBUG_HELP)
                _debug_everywhere(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gaia.common.logs import configure_logging

    configure_logging(args.debug)
    from gaia.common.config_files import ConfigError
    from gaia.common.weights import MissingWeightsError
    from gaia.pipeline.inputs import InputError
    from gaia.pipeline.measure.provenance import ConfigMismatchError
    from gaia.pipeline.measure.worker_process import WorkerSetupError
    from gaia.pipeline.media.decode import DecodeError

    try:
        return args.handler(args)
    except (InputError, MissingWeightsError, ConfigMismatchError, WorkerSetupError,
            DecodeError, ConfigError, OSError, ValueError) as err:
        # One line, so a user reads what to do; the traceback is for whoever debugs gaia.
        # OSError covers a full disk (``common.run_errors``) and a job Ray ended.
        return _one_line(_with_advice(err), args.debug, 2)
    except KeyboardInterrupt:
        print("gaia: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one line and an exit, never a hang or a dump
        return _one_line(f"unexpected {type(err).__name__}: {err}", args.debug, 1)


def _with_advice(err: BaseException) -> str:
    from gaia.common.run_errors import RunStoppedError, is_run_error, stopped_message

    if is_run_error(err) and not isinstance(err, RunStoppedError):
        return stopped_message("writing the output failed", err)
    return str(err) or type(err).__name__


def _one_line(message: str, debug: bool, status: int) -> int:
    hint = "" if debug else " (run with --debug for the traceback)"
    message = " ".join(message.split())  # one line, whatever the exception's text holds
    print(f"gaia: error: {message}{hint}", file=sys.stderr)
    if debug:
        traceback.print_exc(file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
