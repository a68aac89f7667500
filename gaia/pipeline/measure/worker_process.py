"""One video at a time in a child process, so a hung or crashing decoder costs one video.

A corrupt file can make ffmpeg loop forever or crash the process (decord segfaults on some);
neither may stop a curation job (ground rule 5). Each Ray worker keeps one child process that
loads the models once and measures videos on request; the parent watches it:

- no progress message for ``stall_timeout_s``, or the whole video past its time limit: the child
  is killed and the video gets ``failed`` / ``timeout``;
- the child dies: the video gets ``failed`` / ``crashed`` with the end of the child's log;
- then a fresh child is started for the next video;
- the child cannot write (a full disk): ``RunStoppedError`` stops the job, since every later
  video would fail the same way (``gaia.common.run_errors``).

Protocol: one JSON object per line on the child's stdin (requests) and on a dedicated pipe
(replies). The child's own stdout and stderr go to a log file, so a library printing to stdout
cannot corrupt the protocol.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gaia.common.run_errors import RunStoppedError, stopped_message
from gaia.pipeline.measure.config import MeasureConfig
from gaia.schemas.videos import empty_record

_TIMED_OUT: dict = {"type": "timed_out"}  # sentinel: no reply within the wait


class WorkerSetupError(RuntimeError):
    """The child could not start (a missing model, a broken install): not a per-video failure."""


class IsolatedMeasurer:
    """Measures videos in a supervised child process (see the module docstring)."""

    def __init__(self, config: MeasureConfig, metrics_dir: Path, log_dir: Path) -> None:
        self.config = config
        self.metrics_dir = Path(metrics_dir)
        self.log_dir = Path(log_dir)
        self._child: subprocess.Popen | None = None
        self._replies: int | None = None  # the reply pipe's file descriptor
        self._pending = b""  # bytes read from it past the last complete line
        self._log_path: Path | None = None

    def measure(self, uri: str, video_id: str, source: str) -> dict:
        """The ``videos.parquet`` row for one input; never raises for a bad input."""
        self._ensure_child()
        started = time.monotonic()
        request = {"uri": uri, "video_id": video_id, "source": source}
        try:
            self._child.stdin.write(json.dumps(request) + "\n")
            self._child.stdin.flush()
        except BrokenPipeError:
            return self._failed(request, "crashed", "the worker process died before the video "
                                "was sent; see " + str(self._log_path), started)
        deadline = started + self.config.time_limit_base_s
        while True:
            now = time.monotonic()
            wait = min(self.config.stall_timeout_s, deadline - now)
            reply = self._read_reply(wait) if wait > 0 else _TIMED_OUT
            if reply is None or reply is _TIMED_OUT:
                self._kill()
                if reply is _TIMED_OUT:
                    limit = f"no progress for {self.config.stall_timeout_s:.0f} s"
                    if time.monotonic() >= deadline:
                        limit = f"ran past its time limit of {deadline - started:.0f} s"
                    return self._failed(request, "timeout", f"measuring {uri} stalled: {limit}. "
                                        "A hung decoder or a stalled mount; retry with "
                                        "--retry-failed, or raise --stall-timeout", started)
                return self._failed(request, "crashed", "the worker process died while "
                                    f"measuring {uri}: {self._log_tail()}", started)
            if reply["type"] == "probe":
                duration = float(reply.get("duration_s") or 0.0)
                deadline = started + self.config.time_limit_base_s + (
                    self.config.time_limit_per_video_s * duration)
            elif reply["type"] == "done":
                return reply["record"]
            elif reply["type"] == "run_error":
                self._kill()
                cause = OSError(reply.get("errno"), reply.get("error"))
                raise RunStoppedError(stopped_message(
                    f"measuring {uri} could not write its measures", cause), cause.errno)

    def close(self) -> None:
        if self._child is not None and self._child.poll() is None:
            with contextlib.suppress(Exception):
                self._child.stdin.close()
                self._child.wait(timeout=10)
        self._kill()

    def _ensure_child(self) -> None:
        if self._child is not None and self._child.poll() is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"measure-{os.getpid()}-", suffix=".log",
                                    dir=self.log_dir)
        self._log_path = Path(name)
        read_end, write_end = os.pipe()
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self._child = subprocess.Popen(
            [sys.executable, "-m", "gaia.pipeline.measure.worker_process", str(write_end),
             json.dumps(self.config.to_dict()), str(self.metrics_dir)],
            stdin=subprocess.PIPE, stdout=fd, stderr=fd, pass_fds=(write_end,), text=True, env=env,
        )
        os.close(write_end)
        os.close(fd)
        self._replies, self._pending = read_end, b""
        ready = self._read_reply(300.0)
        if not ready or ready.get("type") != "ready":
            message = ready.get("error") if ready else self._log_tail()
            self._kill()
            raise WorkerSetupError(f"the measuring worker could not start: {message}")

    def _read_reply(self, timeout: float) -> dict | None:
        """The next reply; ``_TIMED_OUT`` after ``timeout`` s; None when the child is gone.

        Reads the raw descriptor into our own buffer: a buffered file object could hold
        complete lines that ``select`` no longer sees, and a finished video would then look
        stalled.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._replies], [], [], max(remaining, 0.0))
            if not ready:
                return _TIMED_OUT
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return json.loads(line)

    def _kill(self) -> None:
        if self._child is not None:
            with contextlib.suppress(ProcessLookupError):
                self._child.kill()
            with contextlib.suppress(Exception):
                self._child.wait(timeout=10)
            with contextlib.suppress(Exception):
                self._child.stdin.close()
            if self._replies is not None:
                with contextlib.suppress(OSError):
                    os.close(self._replies)
        self._child = None
        self._replies = None

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self._log_path.read_text(errors="replace").strip().splitlines()
        except (OSError, AttributeError):
            return "no log"
        tail = " | ".join(text[-lines:]) if text else "the log is empty"
        return f"{tail} (log: {self._log_path})"

    @staticmethod
    def _failed(request: dict, reason: str, error: str, started: float) -> dict:
        record = empty_record(request["video_id"], request["uri"], request["source"])
        record.update(status="failed", reason=reason, error=error,
                      elapsed_s=time.monotonic() - started)
        return record


def _child_main(argv: list[str]) -> None:
    """Entry point of the child: load models, then measure each requested video."""
    reply_fd, config_json, metrics_dir = int(argv[0]), argv[1], Path(argv[2])
    replies = os.fdopen(reply_fd, "w", buffering=1)

    def send(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")

    try:
        import cv2
        import torch

        # One core per video: OpenCV's own thread pool (resizes, warps of large frames) and
        # torch's only spend CPU on synchronising beside the other workers.
        torch.set_num_threads(1)
        cv2.setNumThreads(1)
        from gaia.common.run_errors import is_run_error
        from gaia.pipeline.measure.video import Models, measure_video
        from gaia.pipeline.media.decode import DecodeError
        from gaia.pipeline.media.remote import local_copy

        config = MeasureConfig.from_dict(json.loads(config_json))
        models = Models.load(config)
    except Exception as err:
        send({"type": "setup_error", "error": f"{type(err).__name__}: {err}"})
        raise
    send({"type": "ready"})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            with local_copy(request["uri"]) as path:
                record = measure_video(
                    path, request["video_id"], request["source"], metrics_dir, models, config,
                    on_probe=lambda info: send({"type": "probe", "duration_s": info.duration_s}),
                    progress=lambda done, total: send({"type": "progress", "frames": done}),
                )
        except DecodeError as err:
            record = empty_record(request["video_id"], request["uri"], request["source"])
            record.update(status="failed", reason=err.reason, error=str(err))
        except OSError as err:
            if not is_run_error(err):
                raise
            # The run's failure (a full disk): the parent stops the job; this child is done.
            send({"type": "run_error", "errno": err.errno, "error": err.strerror or str(err)})
            return
        record["path"] = request["uri"]
        send({"type": "done", "record": record})


if __name__ == "__main__":
    _child_main(sys.argv[1:])
