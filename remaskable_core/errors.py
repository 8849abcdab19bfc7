"""Errors the user is meant to read: each names the input or file at fault and what to do about it."""


class ReMaskableError(Exception):
    """Base class of every deliberate error of the pack."""


class InvalidInputError(ReMaskableError, ValueError):
    """An input value a node cannot work with (wrong shape, bad JSON, out-of-range point...)."""

    def __init__(self, input_name: str, problem: str, fix: str = ""):
        self.input_name = input_name
        message = f"Input '{input_name}': {problem}"
        if fix:
            message += f" {fix}"
        super().__init__(message)


class ModelFileError(ReMaskableError):
    """A model file that is missing, corrupt or not what its loader expects."""
