"""One Lambda container in a fresh interpreter: `python -m bench.lambda_process MODULE:HANDLER SPEC RESULT [FLAGS]`.

The handler module's import is timed first, with nothing but the interpreter's own start-up modules loaded before it
(this file imports only `importlib`, `sys` and `time`, which Python has loaded already). Then `bench.container`
runs what the spec asks: invocations, the SQS poll loop, and records timings, calls and peak RSS to RESULT.
`--count-calls` installs the botocore call counter before the import (the baseline creates clients at import), so
its import time is not a cold-start figure.
"""

import importlib
import sys
import time


def main(argv: list[str]) -> int:
    target, spec_path, result_path, *flags = argv
    count_calls = "--count-calls" in flags
    if count_calls:
        from bench import call_counter  # noqa: PLC0415 - only in counting runs, before the handler's clients exist

        call_counter.install()
    module_name, _, attribute = target.partition(":")
    started = time.perf_counter()
    module = importlib.import_module(module_name)
    imported = time.perf_counter()
    from bench import container  # noqa: PLC0415 - after the timed import, so it does not pre-load anything

    handler = getattr(module, attribute)
    return container.run(handler, imported - started, spec_path, result_path, count_calls=count_calls)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
