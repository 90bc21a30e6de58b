"""Call the few C library functions that the standard library does not wrap (prctl, signalfd).

PID 1 needs them, and `ctypes` costs ~4 ms of start-up, more than the rest of
secrets-init's imports together, so they are called through `_ctypes` alone
(its `call_function` has been there since ctypes itself), with `ctypes` as
the fallback should an interpreter's `_ctypes` lack it. Arguments are
integers, or bytes passed as a pointer to their buffer; the result is the
function's int return value.
"""


def call(name: str, *args: int | bytes) -> int:
    """`name(*args)`; OSError when the C library has no such function."""
    try:
        import _ctypes

        function = _ctypes.dlsym(_ctypes.dlopen(None, 0), name)  # type: ignore[arg-type]
        result: int = _ctypes.call_function(function, args)
        return result
    except (ImportError, AttributeError):
        import ctypes

        try:
            return int(getattr(ctypes.CDLL(None), name)(*args))
        except AttributeError as error:
            raise OSError(f"no {name} in the C library") from error
