"""Lesson 13 (the appendix: what an echo costs): answers in other styles, and wrong ones."""

CORRECT = {
    1: {
        "a whole number": lambda: 3,
        "with a word": lambda: "3 calls",
        "a measured mean": lambda: 3.004,
        "worked out": lambda: "1 select + 1 recv + 1 send = 3",
    },
}

WRONG = {
    1: {
        "the server that asks first": lambda: 6,
        "no wait": lambda: 2,
        "between": lambda: 4.5,
        "no number": lambda: "six",
    },
}
