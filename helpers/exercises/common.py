"""What every lesson's exercise checks share: the TODO placeholder, the decorator that lets a check say
"not done yet", and the words of a verdict."""

from __future__ import annotations

import functools
import inspect


class _Todo:
    """The placeholder that student copies put where an answer goes (see tools/make_student.py)."""

    def __repr__(self):
        return "TODO"


TODO = _Todo()


def titled(title: str):
    """Make a check say "not done yet" (and not fail) while the exercise still holds its TODO.

    An answer that is still TODO, or a function or class that still raises NotImplementedError,
    gets one line saying so; the notebook goes on. Anything else is checked, and the check
    receives the exercise's title as its first argument.
    """

    def decorate(check):
        @functools.wraps(check)
        def run(*answers):
            not_done = f"{title}: not done yet. Replace the TODO in the cell above with your answer and run the cell again."
            if any(answer is TODO for answer in answers):
                print(not_done)
                return
            try:
                check(title, *answers)
            except NotImplementedError:
                print(not_done)

        run.title = title
        signature = inspect.signature(check)
        run.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # without `exercise`
        return run

    return decorate


def verdict(ok: bool, exercise: str, hint: str) -> None:
    """The final word of a check: 'correct', or an AssertionError with the hint."""
    require(ok, exercise, hint)
    print(f"{exercise}: correct.")


def require(ok: bool, exercise: str, hint: str) -> None:
    """One condition of a check: silent when it holds, an AssertionError with the hint when not."""
    if not ok:
        fail(exercise, hint)


def fail(exercise: str, hint: str) -> None:
    raise AssertionError(f"{exercise}: not yet. {hint}")
