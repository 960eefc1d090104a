"""Mistake: the assertion a hidden test raises when it recognises a catalogued mistake."""


class Mistake(AssertionError):
    """A failed check whose cause is known: `id` is a key of the assignment's catalogue."""

    def __init__(self, id: str, message: str):
        super().__init__(message)
        self.id = id
        self.message = message
