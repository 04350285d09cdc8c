"""Lesson 02 (greenlet): answers in other styles, and wrong ones."""

CORRECT = {
    1: {
        "a string": lambda: "L1 R1 L2",
        "lower case with commas": lambda: "l1, r1, l2",
        "a tuple": lambda: ("L1", "R1", "L2"),
    },
    2: {
        "a list": lambda: [20, 40],
        "a string": lambda: "(20, 40)",
        "named": lambda: "a=20, b=40",
        "worked out": lambda: "a = 10 * 2 = 20; b = 2 * 20 = 40",
    },
    3: {
        "a capital in brackets": lambda: "(B)",
        "a letter and a reason": lambda: "b) recv blocks the one thread",
        "the option's words": lambda: (
            "recv blocks the one thread and greenlet never switches by itself"
        ),
    },
}

WRONG = {
    1: {
        "R2 printed too": lambda: "L1 R1 L2 R2",
        "left first, then right": lambda: "L1 L2 R1 R2",
    },
    2: {
        "b is a again": lambda: (20, 20),
        "a is the input": lambda: (10, 20),
        "one number": lambda: 40,
        "b doubled twice": lambda: "(20, 80)",
    },
    3: {
        "threads": lambda: "a",
        "the OS": lambda: "c",
        "the words of (a)": lambda: "greenlets run on two threads that share a lock",
    },
}
