"""Answers to the course's exercises, kept apart from the checkers they test.

One module per lesson, ``lessonNN.py``, each with two tables keyed by exercise number:

* ``CORRECT``: right answers written in other styles than the worked solution (a lambda, a
  partial, a class; a number, a string with a unit, a sentence), each named by its style.
  With the worked solution they make at least three styles per exercise; a checker that
  rejects one of them is a wrong checker.
* ``WRONG``: wrong answers the checker must reject with advice, each named by its mistake.

Each entry is a function that returns the answer, so that building one (a class, a
measurement) happens only when the test runs it. ``tests/independent_answers.py`` holds more
right answers, written from the questions alone.
"""
