"""Helpers for testing code that uses critic, without a model.

``FakeBackend`` answers verdict requests from a script, so a pipeline built on
:class:`critic.Judge` can be tested in milliseconds::

    from critic import Judge
    from critic.testing import FakeBackend

    judge = Judge(FakeBackend.scripted([0.9, 0.2]))   # P(first shown wins) per order
    assert judge.compare("q", "good", "bad").label == "A"
"""

from critic.backends.fake import FakeBackend, letter_output

__all__ = ["FakeBackend", "letter_output"]
