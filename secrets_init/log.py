"""One-line log events on stderr, as text or JSON.

The standard `logging` package costs several milliseconds of import and a few
hundred kilobytes that PID 1 would carry for the container's whole life; this
needs four levels and two formats, nothing more. Callers pass messages that
never contain a secret value: only variable names, references and causes.
"""

import os
import time

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class Logger:
    def __init__(self, level: str = "info", fmt: str = "text") -> None:
        self.threshold = LEVELS[level]
        self.json = fmt == "json"

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def emit(self, level: str, msg: str, **fields: object) -> None:
        if LEVELS[level] < self.threshold:
            return
        if self.json:
            import json

            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            record: dict[str, object] = {
                "time": f"{stamp}.{int(now % 1 * 1000):03d}Z",
                "level": level,
                "msg": msg,
            }
            record.update(fields)
            line = json.dumps(record, ensure_ascii=False, default=str)
        else:
            extra = "".join(f" {key}={value}" for key, value in fields.items())
            line = f"secrets-init: {level}: {_one_line(msg)}{_one_line(extra)}"
        _write_stderr(line + "\n")

    def debug(self, msg: str, **fields: object) -> None:
        self.emit("debug", msg, **fields)

    def info(self, msg: str, **fields: object) -> None:
        self.emit("info", msg, **fields)

    def warning(self, msg: str, **fields: object) -> None:
        self.emit("warning", msg, **fields)

    def error(self, msg: str, **fields: object) -> None:
        self.emit("error", msg, **fields)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _write_stderr(text: str) -> None:
    data = text.encode("utf-8", "backslashreplace")
    while data:
        try:
            written = os.write(2, data)
        except InterruptedError:
            continue
        except OSError:
            return
        data = data[written:]
