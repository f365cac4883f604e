"""What every command shares: exit codes, the two error types and the check marks."""

from __future__ import annotations

EXIT_OK = 0  # done; nothing wrong found
EXIT_PROBLEMS = 1  # something failed, or a check found a problem (doctor ✗, a non-empty DLQ, a file not queued)
EXIT_USAGE = 2  # the command line or the settings are wrong; nothing was done
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); a backfill keeps its state and continues with --resume

MARK_OK = "✓"
MARK_FAIL = "✗"
MARK_SKIPPED = "·"

EXIT_CODES_HELP = """exit codes:
  0    done, nothing wrong found
  1    something failed or a problem was found (details on stderr/stdout)
  2    usage error: bad arguments or a missing setting; nothing was done
  130  interrupted (Ctrl-C)"""


def plural(count: int, noun: str, nouns: str = "") -> str:
    """`1 file`, `2 files`, `1,200 files` (`nouns` when adding an s is wrong)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


class CliError(Exception):
    """A failure worth one line on stderr (never a traceback); `exit_code` is what the command returns."""

    exit_code = EXIT_PROBLEMS


class UsageError(CliError):
    """Bad arguments or settings, found before anything was done."""

    exit_code = EXIT_USAGE
